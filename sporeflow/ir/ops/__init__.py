"""Importing this package registers every primitive."""
from . import control, elementwise, linalg, nn, random, reduce, shape  # noqa: F401
