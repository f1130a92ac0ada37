"""`sf.export` and `sf.load` (MindSpore's `mindspore.export` / `mindspore.load`).

    sf.export(net, sf.Tensor(x), file_name="net", file_format="MINDIR")   # -> net.mindir
    graph = sf.load("net.mindir")
    out = nn.GraphCell(graph)(sf.Tensor(x))

The network is traced in eval mode on the example inputs (the shapes are fixed by them) and
its Parameters are stored with the graph. "MINDIR" is MindIR's protobuf container holding
sporeflow's own primitives (mindir.py: it round-trips through sporeflow); "ONNX" writes
standard ONNX operators (onnx_export.py, the 'onnx' extra) that other runtimes execute.
Files are written atomically.
"""
from __future__ import annotations

import os

from ...frontend.jit import JitFunction
from ...frontend.tensor import Parameter
from ..checkpoint import _atomic_write
from .mindir import ExportedGraph, MindIRError, from_bytes, to_model
from .onnx_export import to_onnx
from .onnx_format import require_onnx
from .onnx_import import from_onnx

_SUFFIX = {"MINDIR": ".mindir", "ONNX": ".onnx"}


def trace_for_export(net, inputs) -> ExportedGraph:
    """Trace `net` on `inputs` in eval mode -> the graph and the Parameters it reads."""
    was_training = [c.training for _, c in net.cells_and_names()] if hasattr(net, "cells_and_names") else []
    if hasattr(net, "set_train"):
        net.set_train(False)
    try:
        traced = JitFunction(net, name=type(net).__name__).trace(*inputs)
    finally:
        for (_, c), mode in zip(net.cells_and_names() if was_training else (), was_training):
            object.__setattr__(c, "training", mode)
    if any(p.name == "global_rng_state" for p in traced.updated):
        raise ValueError("export: the network draws random numbers (it updates the global random state); export it "
                         "in eval mode with no random ops (Dropout is off in eval mode)")
    if traced.updated:
        raise ValueError(f"export: the network updates {[p.name for p in traced.updated]} when called; export "
                         "a network whose forward pass has no side effects")
    if traced.out_static:
        raise ValueError("export: the network returns non-tensor values; export a network that returns tensors")
    params = [(p.name, p._data, p.dtype) for p in traced.captured if isinstance(p, Parameter)]
    return ExportedGraph(traced.graph, params, len(traced.graph.inputs) - len(params))


def export(net, *inputs, file_name: str, file_format: str = "MINDIR", **kwargs) -> str:
    """Write `net` traced on `inputs` to `file_name` + ".mindir" / ".onnx"; returns the path."""
    fmt = str(file_format).upper()
    if fmt not in _SUFFIX:
        raise ValueError(f"export: file_format must be 'MINDIR' or 'ONNX' ({fmt!r} is not supported by sporeflow)")
    unknown = set(kwargs) - {"enc_key", "enc_mode", "dataset", "incremental"}
    if unknown:
        raise TypeError(f"export got unexpected keyword arguments {sorted(unknown)}")
    if kwargs.get("enc_key") is not None:
        raise NotImplementedError("export: encrypted models (enc_key) are not supported by sporeflow")
    if not inputs:
        raise ValueError("export: give example inputs (their shapes and dtypes fix the exported graph)")
    exported = trace_for_export(net, inputs)
    path = os.fspath(file_name)
    path = path if path.endswith(_SUFFIX[fmt]) else path + _SUFFIX[fmt]
    if fmt == "MINDIR":
        blob = to_model(exported).SerializeToString()
    else:
        blob = to_onnx(exported.graph, exported.num_inputs, exported.parameters,
                       type(net).__name__).SerializeToString()
    _atomic_write(path, [blob])
    return path


def load(file_name: str, **kwargs) -> ExportedGraph:
    """Read a .mindir (written by sporeflow) or .onnx file; wrap the result in nn.GraphCell."""
    if kwargs.get("dec_key") is not None:
        raise NotImplementedError("load: encrypted models (dec_key) are not supported by sporeflow")
    path = os.fspath(file_name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: '{path}' does not exist")
    with open(path, "rb") as f:
        blob = f.read()
    if path.endswith(".onnx"):
        onnx = require_onnx("loading an ONNX file")
        try:
            model = onnx.load_from_string(blob)
        except Exception as e:  # noqa: BLE001 (onnx raises DecodeError and others)
            raise MindIRError(f"'{path}' is not an ONNX model ({e})") from None
        return from_onnx(model)
    return from_bytes(blob, path)


__all__ = ["export", "load", "ExportedGraph", "MindIRError"]
