"""The graph IR: dtypes, types, Graph/Node/Value, the op registry, verifier, printer, parser,
and the reference interpreter."""
from . import dtypes
from .dtypes import DType
from .graph import Graph, GraphBuilder, Node, Value
from .registry import NOT_DIFFERENTIABLE, REGISTRY, Amp, Kind, OpDef, def_op, get_op
from .types import Attrs, ConstValue, TensorType
from .interpret import run_graph
from .parser import parse, parse_module
from .printer import print_graph
from .verify import verify

__all__ = ["dtypes", "DType", "Graph", "GraphBuilder", "Node", "Value", "NOT_DIFFERENTIABLE", "REGISTRY", "Amp",
           "Kind", "OpDef", "def_op", "get_op", "Attrs", "ConstValue", "TensorType", "run_graph", "parse",
           "parse_module", "print_graph", "verify"]
