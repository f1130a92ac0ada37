"""Image file decoding through Pillow (the `image` extra), shared by vision.Decode and
ImageFolderDataset(decode=True). Pillow is optional: without it, decoding raises an error that
says how to install it, and nothing else in the dataset package needs it."""
from __future__ import annotations

import io

import numpy as np

from ...errors import DatasetError

try:
    from PIL import Image, UnidentifiedImageError
except ImportError:  # optional dependency: see decode_image's error
    Image = None
    UnidentifiedImageError = OSError


def decode_image(data, op: str) -> np.ndarray:
    """Encoded image bytes (a 1-d uint8 array or bytes) -> HWC uint8 RGB array."""
    if Image is None:
        raise ImportError(f"{op}: decoding images needs Pillow; install it with pip install 'sporeflow[image]' "
                          "(or pip install pillow)")
    a = np.asarray(data)
    if isinstance(data, (bytes, bytearray)):
        raw = bytes(data)
    elif a.dtype == np.uint8 and a.ndim == 1:
        raw = a.tobytes()
    else:
        raise DatasetError(f"{op}: expected the encoded image as a 1-d uint8 array (a file's bytes), got "
                           f"{a.dtype} of shape {a.shape}; is the image already decoded?")
    try:
        with Image.open(io.BytesIO(raw)) as img:
            return np.array(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DatasetError(f"{op}: cannot decode the image ({len(raw)} bytes): {e}") from None
