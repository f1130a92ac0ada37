"""sporeflow-ir bisect (opt-bisect): it names a deliberately wrong pass registered by the test
(digits CNN), a wrong rewrite inside a pass whose other rewrite is right, the same through
--check CMD alone, and nothing on the MLP training step the default pipeline compiles (nor
when fusion merges or memory-plan reuses are cut off part-way)."""
from __future__ import annotations

import os
import sys

import numpy as np

from sporeflow.ir.graph import Graph
from sporeflow.passes import bisect, manager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tools import ir_bisect, ir_tool  # noqa: E402
from test_ir_tool_cli import TRAIN_MLP  # noqa: E402

CNN_WITH_WRONG_PASS = f"""
import sys, numpy as np, sporeflow as sf
sys.path.insert(0, {os.path.join(ROOT, 'examples')!r})
from train_digits import DigitsCNN
net = DigitsCNN()
f = sf.jit(net, backend="llvm", pipeline=["simplify", "drop_last_bias", "fuse"])
print(f(sf.Tensor(np.zeros((2, 1, 8, 8), np.float32))).shape)
"""

SWAP_ARGS = """
import sys
import numpy as np, sporeflow as sf
from sporeflow import ops
from sporeflow.passes.manager import register_pass
from sporeflow.passes.rewrite import Rebuilder

def swap(node, rb):        # add(a, b) -> add(b, a) is right, sub(a, b) -> sub(b, a) is not
    if node.op in ("add", "sub") and node.inputs[0].type == node.inputs[1].type:
        return rb.emit(node.op, [node.inputs[1], node.inputs[0]], dict(node.attrs), node)
    return None

register_pass("swap_args")(lambda g: Rebuilder(swap, name="swap_args").graph(g))
f = sf.jit(lambda x, y: ops.exp(x + y) - ops.tanh(y) * x, backend="llvm",
           pipeline=["simplify", "swap_args", "fuse"])
x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
got = f(sf.Tensor(x), sf.Tensor(x * 0.5)).asnumpy()
sys.exit(0 if np.allclose(got, np.exp(x + x * 0.5) - np.tanh(x * 0.5) * x, atol=1e-5) else 1)
"""


def _drop_last_bias(g: Graph) -> Graph:
    """Deliberately wrong: returns the logits without the last Dense's bias (a new Graph that
    shares the nodes; the add is left dead)."""
    out = g.outputs[0]
    assert out.producer.op == "add"
    return Graph(g.name, g.inputs, g.nodes, [out.producer.inputs[0]] + list(g.outputs[1:]))


def test_bisect_names_a_wrong_pass_registered_by_the_test(tmp_path):
    script = tmp_path / "cnn.py"
    script.write_text(CNN_WITH_WRONG_PASS)
    manager.register_pass("drop_last_bias", replace=True)(_drop_last_bias)
    try:
        r = ir_bisect.bisect_script(str(script))
    finally:
        manager.PASSES.pop("drop_last_bias")
    assert r.steps[r.culprit - 1] == "pass drop_last_bias"
    assert r.steps[: r.culprit - 1] == ["pass simplify"] + [s for s in r.steps[1: r.culprit - 1]
                                                            if not s.startswith("pass ")]
    assert any(s.startswith("fuse.out_ewise: conv2d into") for s in r.steps)   # merges are steps too
    assert "output 0 differs from the interpreter" in r.first_bad.problems[0]
    assert bisect.bisect_count() == 0 and bisect._BISECT.limit is None       # left as it was


def test_bisect_names_the_wrong_rewrite_inside_a_pass(tmp_path, capsys):
    script = tmp_path / "swap.py"
    script.write_text(SWAP_ARGS)
    assert ir_tool.main(["bisect", str(script)]) == 1
    out = capsys.readouterr().out
    assert "the first bad step is 4 of" in out and ": swap_args: sub (swap.py:" in out
    r = ir_bisect.bisect_script(str(script))
    assert r.steps[:4] == ["pass simplify", "pass swap_args", r.steps[2], r.steps[3]]
    assert r.steps[2].startswith("swap_args: add") and r.steps[3].startswith("swap_args: sub")
    assert "swap_args" not in manager.PASSES          # the script's pass is gone after each run
    assert [bad for _, bad in r.tried][:2] == [True, False]   # no limit: bad; every step skipped: good


def test_bisect_with_only_a_check_command(tmp_path, capsys):
    script = tmp_path / "swap.py"
    script.write_text(SWAP_ARGS)
    cmd = f"PYTHONPATH={ROOT} {sys.executable} {script}"
    assert ir_tool.main(["bisect", str(script), "--no-interp", "--check", cmd]) == 1
    out = capsys.readouterr().out
    assert "the first bad step is 4 of" in out and "swap_args: sub" in out and "exited with 1" in out


def test_bisect_finds_nothing_wrong_in_the_default_pipeline(tmp_path, capsys):
    script = tmp_path / "mlp.py"
    script.write_text(TRAIN_MLP)
    r = ir_bisect.bisect_script(str(script))
    assert r.culprit is None and r.first_bad is None and len(r.tried) == 1
    assert len(r.steps) > 20 and "pass fuse" in r.steps and any(s.startswith("fuse.row_domain") for s in r.steps)
    assert ir_tool.main(["bisect", str(script)]) == 0
    assert "every one of the" in capsys.readouterr().out
    # stopping part-way through the fusion merges, or before the memory plan's first in-place
    # write / buffer reuse, still gives a right (less fused, or bigger) program
    for first in ("fuse.row_domain", "memory."):
        k = next(i for i, s in enumerate(r.steps) if s.startswith(first))
        part = ir_bisect.run_in_process(str(script), [], k, 1e-4, 1e-5)
        assert not part.bad and part.compared == 1 and part.steps[:k] == r.steps[:k]    # the jitted step
    np.testing.assert_equal(bisect.bisect_count(), 0)


def test_opt_with_an_opt_bisect_limit_lists_and_applies_the_first_steps(tmp_path, capsys):
    import sporeflow as sf
    from sporeflow import ops
    g = sf.jit(lambda x: ops.softmax(x * 1.0, -1)).trace(sf.Tensor(np.ones((4, 8), np.float32))).graph
    path = tmp_path / "softmax.ir"
    path.write_text(str(g))
    assert ir_tool.main(["opt", str(path), "--passes", "simplify,fuse", "--opt-bisect-limit", "3"]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert lines[0] == "BISECT: running step (1) pass simplify" and lines[2] == "BISECT: running step (3) pass fuse"
    assert lines[1].startswith(f"BISECT: running step (2) algebraic: mul ({os.path.basename(__file__)}:")
    assert lines[3].startswith("BISECT: NOT running step (4) fuse.") and "= fused(" not in out
    assert "mul(" not in out and bisect._BISECT.limit is None         # the rewrite ran; limit reset
    assert ir_tool.main(["opt", str(path), "--passes", "simplify,fuse"]) == 0
    full, err = capsys.readouterr()
    assert "= fused(" in full and err == ""
