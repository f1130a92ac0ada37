"""sporeflow-ir's dump / view / stats and the public pass API (sf.jit(pipeline=...)), on the MLP
and digits CNN graphs; the page `view` writes is loaded in a headless Chromium when one is here."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import ops
from sporeflow.errors import SporeflowError
from sporeflow.passes import manager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tools import ir_capture, ir_stats, ir_tool, ir_view  # noqa: E402

TRAIN_MLP = f"""
import sys, numpy as np, sporeflow as sf
from sporeflow import nn, ops
sys.path.insert(0, {os.path.join(ROOT, 'tests')!r})
from small_nets import MLP
net = MLP()
loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
grad_fn = sf.value_and_grad(lambda x, y: loss_fn(net(x), y), None, net.trainable_params())

@sf.jit(backend="llvm")
def step(x, y):
    loss, grads = grad_fn(x, y)
    return loss, grads

per_example = sf.vmap(lambda x: ops.relu(x * 2.0).sum(), in_axes=0)
x, y = sf.Tensor(np.ones((4, 6), np.float32)), sf.Tensor(np.array([0, 1, 2, 3], np.int32))
print(step(x, y)[0], per_example(x))
"""

DIGITS_CNN = f"""
import sys, numpy as np, sporeflow as sf
sys.path.insert(0, {os.path.join(ROOT, 'examples')!r})
from train_digits import DigitsCNN
net = DigitsCNN()
f = sf.jit(net, backend="llvm")
print(f(sf.Tensor(np.zeros((2, 1, 8, 8), np.float32))).shape)
"""


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    d = tmp_path_factory.mktemp("irtool_cli")
    (d / "mlp.py").write_text(TRAIN_MLP)
    (d / "cnn.py").write_text(DIGITS_CNN)
    return d


def test_console_script_and_module_entry_points():
    text = open(os.path.join(ROOT, "pyproject.toml")).read()
    assert 'sporeflow-ir = "sporeflow.tools.ir_tool:main"' in text
    setup = open(os.path.join(ROOT, "setup.py")).read()
    assert '"sporeflow.tools": "tools"' in setup and '"sporeflow.tools"]' in setup
    r = subprocess.run([sys.executable, "-m", "tools", "--help"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0 and "{dump,opt,diff,view" in r.stdout


def test_dump_every_pass_code_and_transforms(scripts, capsys):
    out = scripts / "dump"
    assert ir_tool.main(["dump", "--out", str(out), "--llvm", "--asm", str(scripts / "mlp.py")]) == 0
    files = sorted(os.path.relpath(os.path.join(a, f), out) for a, _, fs in os.walk(out) for f in fs)
    passes = [f for f in files if "_step_passes/" in f]
    assert [os.path.basename(f) for f in passes] == ["00_trace.ir", "01_simplify.ir", "02_fold_transposes.ir",
                                                    "03_fuse.ir"]
    assert "= fused(" in (out / passes[3]).read_text() and "= fused(" not in (out / passes[0]).read_text()
    ll = [f for f in files if f.endswith("_step_llvm.ll")]
    asm = [f for f in files if f.endswith("_step_llvm.s")]
    assert len(ll) == 1 and "define" in (out / ll[0]).read_text()
    assert len(asm) == 1 and len((out / asm[0]).read_text()) > 100
    for stage in ("forward", "grad", "vmap_in", "vmap"):
        assert any(f.endswith(f"_{stage}.ir") for f in files), (stage, files)
    grad = next(f for f in files if f.endswith("_grad.ir"))
    assert "matmul" in (out / grad).read_text()
    vm = (out / next(f for f in files if f.endswith("_vmap.ir"))).read_text()
    assert "f32[4,6]" in vm and "f32[4,6]" not in (out / next(f for f in files if f.endswith("_vmap_in.ir"))).read_text()


@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_view_draws_every_node_with_groups_scopes_shapes(scripts, net, tmp_path):
    runs = ir_capture.load(str(scripts / f"{net}.py"), None, "step" if net == "mlp" else None)
    g = runs[-1].final
    items, edges = ir_view.drawing(g)
    n_fused_members = sum(len(n.attrs["body"].nodes) for n in g.nodes if n.op == "fused")
    assert len(items) == len(g.inputs) + 1 + n_fused_members + sum(1 for n in g.nodes if n.op != "fused")
    for engine in ("networkx",) + (("dot",) if shutil.which("dot") else ()):
        html = ir_view.page(g, "t", engine)
        assert html.count('<g class="node"') == len(items)
        assert html.count('<g class="group">') == sum(1 for n in g.nodes if n.op == "fused") > 0
        assert '<g class="scope">' in html
        assert "f32[" in html and "<title>" in html and ".py:" in html     # shapes, tooltips, source lines
    out = tmp_path / "v.html"
    assert ir_tool.main(["view", str(scripts / f"{net}.py"), "-o", str(out), "--layout", "networkx"]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>") and "<script" in out.read_text()


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(_browser() is None, reason="no headless Chromium installed (apt-get install chromium)")
def test_view_page_loads_in_a_browser_without_errors(scripts, tmp_path):
    out = tmp_path / "cnn.html"
    assert ir_tool.main(["view", str(scripts / "cnn.py"), "-o", str(out)]) == 0
    expected = out.read_text().count('<g class="node"')
    r = subprocess.run([_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", out.as_uri()],
                       capture_output=True, text=True, timeout=60)
    shown = re.search(r'data-nodes-shown="(\d+)"', r.stdout)
    errors = re.search(r'data-errors="(\d+)"', r.stdout)
    assert shown and errors, r.stdout[:500] + r.stderr[-500:]
    assert int(shown.group(1)) == expected > 10 and errors.group(1) == "0"


def test_stats_counts_ops_bytes_flops_and_pass_times(scripts, capsys):
    runs = ir_capture.load(str(scripts / "cnn.py"), None)
    g = runs[-1].final
    ks = ir_stats.kernels(g)
    conv = [k for k in ks if "conv2d" in k["kernel"]]
    assert conv
    # conv1: 1 -> 16 channels, 3x3 kernel, same padding on 8x8, batch 2: 2*(2*16*8*8)*(1*3*3) flops
    first = next(n for n in g.nodes if n.op == "conv2d" or n.op == "fused" and any(
        m.op == "conv2d" for m in n.attrs["body"].nodes))
    assert ir_stats.node_flops(first) >= 2 * (2 * 16 * 8 * 8) * 9
    assert ir_tool.main(["stats", str(scripts / "cnn.py")]) == 0
    out = capsys.readouterr().out
    assert "nodes per op:" in out and re.search(r"conv2d\s+2", out) and "fused groups:" in out
    assert re.search(r"fuse\s+[\d.]+ ms", out) and "flop/B" in out


def test_jit_pipeline_runs_a_user_pass_and_checks_names():
    import runpy
    mod = runpy.run_path(os.path.join(ROOT, "examples", "user_pass.py"))   # registers mul2_to_add
    seen = []
    manager.observers.append(lambda stage, g: seen.append((stage, str(g))))
    try:
        f = sf.jit(lambda x: ops.relu(x * 2.0).sum(), backend="llvm", pipeline=["simplify", "mul2_to_add"])
        x = np.arange(-3, 3, dtype=np.float32).reshape(2, 3)
        assert float(f(sf.Tensor(x))) == 6.0
    finally:
        manager.observers.pop()
    stages = dict(seen)
    assert list(stages) == ["trace", "simplify", "mul2_to_add"]
    assert "mul(" in stages["simplify"] and "= add(%arg0, %arg0)" in stages["mul2_to_add"]
    assert mod["mul2_to_add"] is manager.PASSES["mul2_to_add"].fn
    with pytest.raises(SporeflowError, match="unknown pass 'no_such'; registered passes: .*mul2_to_add"):
        sf.jit(lambda x: x, pipeline=["simplify", "no_such"])
    with pytest.raises(SporeflowError, match="requires \\['simplify'\\] earlier"):
        sf.jit(lambda x: x * 2.0, pipeline=["mul2_to_add"])(sf.Tensor(x))
    with pytest.raises(TypeError, match="pipeline="):
        sf.jit(lambda x: x, passes=["simplify"])


def test_disabled_opt_level_and_context_pipeline():
    seen = []
    manager.observers.append(lambda stage, g: seen.append(stage))
    fn = lambda x: ops.exp(x * 3.0).sum()   # noqa: E731
    x = sf.Tensor(np.ones((2, 3), np.float32))
    try:
        sf.jit(fn, backend="llvm", disabled=["fuse"])(x)
        assert seen == ["trace", "simplify", "fold_transposes"]
        seen.clear()
        sf.jit(fn, backend="llvm", opt_level=1)(x)        # fuse is opt level 2
        assert seen == ["trace", "simplify", "fold_transposes"]
        seen.clear()
        sf.set_context(pipeline=["dce"])
        f = sf.jit(fn, backend="llvm")
        f(x)
        assert seen == ["trace", "dce"]
        sf.set_context(pipeline=None)
        seen.clear()
        f(x)                     # a new pipeline is a new compiled graph
        assert seen == ["trace", "simplify", "fold_transposes", "fuse"]
    finally:
        manager.observers.pop()
        sf.set_context(pipeline=None)
