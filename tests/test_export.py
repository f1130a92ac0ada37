"""sf.export / sf.load: MindIR round trips every primitive exactly; ONNX export passes
onnx.checker, runs in onnxruntime to the interpreter's numbers and reads back; the digits CNN
round-trips through both formats and runs compiled through nn.GraphCell."""
import importlib.util
import os
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings

import sporeflow as sf
from sporeflow import nn
from sporeflow.errors import ShapeError, SporeflowError
from sporeflow.ir import dtypes as D
from sporeflow.ir.graph import GraphBuilder
from sporeflow.ir.interpret import run_graph
from sporeflow.ir.printer import print_graph
from sporeflow.ir.types import Attrs
from sporeflow.runtime.export.mindir import ExportedGraph, MindIRError, from_bytes, to_model
from test_ops_infer import GENERATORS, case

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
from train_digits import DigitsCNN  # noqa: E402

HAVE_ONNX = importlib.util.find_spec("onnx") is not None
HAVE_ORT = importlib.util.find_spec("onnxruntime") is not None
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="the onnx package (the 'onnx' extra) is not installed")


def _one_node(op, types, attrs):
    b = GraphBuilder(op)
    ins = [b.add_input(t, f"x{i}") for i, t in enumerate(types)]
    return b.finish(b.emit(op, ins, Attrs(attrs)))


def _same(a, b):
    """Bit-identical (NaN payloads and -0.0 included)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("op", sorted(GENERATORS))
def test_mindir_round_trips_every_primitive(op):
    @settings(max_examples=4)
    @given(case(op))
    def check(c):
        types, attrs, arrays = c
        g = _one_node(op, types, attrs)
        back = from_bytes(to_model(ExportedGraph(g, [], len(types))).SerializeToString(), "mem").graph
        assert print_graph(back) == print_graph(g)
        with np.errstate(all="ignore"):
            for x, y in zip(run_graph(g, arrays), run_graph(back, arrays)):
                _same(x, y)
    check()


def _onnx_ops():
    from sporeflow.runtime.export.onnx_export import TABLE
    return sorted(op for op in TABLE if op in GENERATORS)


@needs_onnx
@pytest.mark.parametrize("op", _onnx_ops() if HAVE_ONNX else [])
def test_onnx_export_checks_runs_and_reads_back(op):
    from sporeflow.runtime.export.onnx_export import to_onnx
    from sporeflow.runtime.export.onnx_import import from_onnx

    @settings(max_examples=4)
    @given(case(op))
    def check(c):
        types, attrs, arrays = c
        g = _one_node(op, types, attrs)
        try:
            model = to_onnx(g, len(types), [])    # runs onnx.checker (full check, with shape inference)
        except SporeflowError as e:               # refused by design, with the reason: pad's interior
            assume("cannot be exported" not in str(e))
            raise
        back = from_onnx(model).graph
        with np.errstate(all="ignore"):
            want = run_graph(g, arrays)
            got = run_graph(back, arrays)
        for w, o in zip(want, got):
            np.testing.assert_allclose(D.to_compute(o, back.outputs[0].dtype).astype(np.float64),
                                       D.to_compute(w, g.outputs[0].dtype).astype(np.float64),
                                       rtol=1e-6, atol=1e-6, equal_nan=True)
        plain = {D.float32, D.int64, D.bool_}     # onnxruntime's CPU kernels lack some others
        if HAVE_ORT and all(t.dtype in plain for t in [*types, *g.out_types]):
            import onnxruntime as ort
            s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            outs = s.run(None, {f"input_{i}": np.asarray(a) for i, a in enumerate(arrays)})
            for w, o in zip(want, outs):
                np.testing.assert_allclose(np.asarray(o, np.float64), w.astype(np.float64), rtol=2e-6, atol=2e-6,
                                           equal_nan=True)
    check()


def _digits_net():
    sf.set_seed(3)
    net = DigitsCNN()
    net.set_train(False)
    x = np.random.default_rng(0).standard_normal((4, 1, 8, 8)).astype(np.float32)
    return net, x, net(sf.Tensor(x)).asnumpy()


@pytest.mark.parametrize("fmt", ["MINDIR", pytest.param("ONNX", marks=needs_onnx)])
def test_digits_cnn_round_trip_and_compiled_graph_cell(tmp_path, fmt):
    net, x, ref = _digits_net()
    net.set_train(True)
    path = sf.export(net, sf.Tensor(x), file_name=str(tmp_path / "digits"), file_format=fmt)
    assert net.training  # export traces in eval mode and restores the mode
    cell = nn.GraphCell(sf.load(path))
    np.testing.assert_allclose(cell(sf.Tensor(x)).asnumpy(), ref, rtol=1e-6, atol=1e-6)
    sf.set_context(mode=sf.GRAPH_MODE, device_target="CPU")
    np.testing.assert_allclose(cell(sf.Tensor(x)).asnumpy(), ref, rtol=1e-5, atol=1e-5)
    assert sorted(p.name for p in cell.get_parameters()) == sorted(p.name for p in net.get_parameters()
                                                                    if "moving" in p.name or p.requires_grad)
    if fmt == "ONNX" and HAVE_ORT:
        import onnxruntime as ort
        out = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input_0": x})[0]
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_graph_cell_params_and_input_checks(tmp_path):
    net, x, ref = _digits_net()
    graph = sf.load(sf.export(net, sf.Tensor(x), file_name=str(tmp_path / "d")))
    zeros = {"fc2.bias": sf.Tensor(np.full(10, 5.0, np.float32))}
    out = nn.GraphCell(graph, params_init=zeros)(sf.Tensor(x)).asnumpy()
    np.testing.assert_allclose(out - ref, np.broadcast_to(5.0 - net.fc2.bias.asnumpy(), ref.shape), rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(ValueError, match="params_init names \\['nope'\\]"):
        nn.GraphCell(graph, params_init={"nope": sf.Tensor(np.zeros(1, np.float32))})
    with pytest.raises(ShapeError, match="exported graph takes"):
        nn.GraphCell(graph)(sf.Tensor(np.zeros((2, 1, 8, 8), np.float32)))


def test_export_errors_name_the_op(tmp_path):
    class Noisy(nn.Cell):
        def construct(self, x):
            return x + sf.ops.uniform(x.shape, sf.Tensor(0.0), sf.Tensor(1.0))

    with pytest.raises(ValueError, match="draws random numbers"):
        sf.export(Noisy(), sf.Tensor(np.zeros(3, np.float32)), file_name=str(tmp_path / "n"))
    with pytest.raises(ValueError, match="file_format must be"):
        sf.export(DigitsCNN(), sf.Tensor(np.zeros((1, 1, 8, 8), np.float32)), file_name="x", file_format="AIR")
    bad = tmp_path / "bad.mindir"
    bad.write_bytes(b"\x08\x01garbage")
    with pytest.raises(MindIRError):
        sf.load(str(bad))


@needs_onnx
def test_onnx_refuses_what_it_cannot_express():
    from sporeflow.runtime.export.onnx_export import to_onnx
    g = _one_node("scatter_add", [sf.ir.types.TensorType((3,), D.float32), sf.ir.types.TensorType((2,), D.int32),
                                  sf.ir.types.TensorType((2,), D.float32)], {"axis": 0})
    with pytest.raises(SporeflowError, match="op 'scatter_add' \\(f32\\[3\\], i32\\[2\\], f32\\[2\\]\\).*scatter-add is not"):
        to_onnx(g, 3, [])
