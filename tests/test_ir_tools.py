"""tools/ir_tool.py (dump / opt / diff) and tools/op_coverage.py, run as a user would."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IR_TOOL = os.path.join(ROOT, "tools", "ir_tool.py")
COVERAGE = os.path.join(ROOT, "tools", "op_coverage.py")

SCRIPT = """
import numpy as np, sporeflow as sf
from sporeflow import ops

@sf.jit
def step(x):
    return ops.relu(x * 2.0).sum()

print(step(sf.Tensor(np.ones((2, 3), np.float32))))
"""


def run(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def dumped(tmp_path_factory):
    d = tmp_path_factory.mktemp("irtool")
    (d / "script.py").write_text(SCRIPT)
    r = run(IR_TOOL, "dump", "--out", str(d / "ir"), "script.py", cwd=d)
    assert r.returncode == 0, r.stderr
    return d, r


def test_dump_writes_traced_and_lowered_graphs(dumped):
    d, r = dumped
    files = sorted(f for f in os.listdir(d / "ir") if "_step_" in f and f.endswith(".ir"))
    assert files == ["0000_step_traced.ir", "0001_step_lowered_llvm.ir"]   # the default backend
    assert "12." in r.stdout and str(d / "ir" / files[0]) in r.stdout
    text = (d / "ir" / files[0]).read_text()
    assert text.startswith("graph @step(%arg0: f32[2,3]) -> (f32[]) {") and "script.py:7" in text


def test_opt_parses_runs_passes_and_prints(dumped):
    d, _ = dumped
    f = str(d / "ir" / "0000_step_traced.ir")
    r = run(IR_TOOL, "opt", f)
    assert r.returncode == 0 and r.stdout == open(f).read()
    r = run(IR_TOOL, "opt", f, "--passes", "simplify,fuse", "--verify")
    assert r.returncode == 0, r.stderr
    assert "= fused(" in r.stdout and "body=@fused_mul_maximum_reduce_sum" in r.stdout
    r = run(IR_TOOL, "opt", "--list")
    assert r.returncode == 0 and "fuse" in r.stdout and "simplify" in r.stdout
    r = run(IR_TOOL, "opt", f, "--passes", "no_such_pass")
    assert r.returncode != 0 and "unknown pass 'no_such_pass'" in r.stderr
    bad = d / "bad.ir"
    bad.write_text(open(f).read().replace("mul(", "mul2("))
    r = run(IR_TOOL, "opt", str(bad))
    assert r.returncode == 2 and "line 3, column" in r.stderr and "unknown op 'mul2'" in r.stderr


def test_diff_ignores_numbering_and_shows_real_changes(dumped):
    d, _ = dumped
    a = str(d / "ir" / "0000_step_traced.ir")
    text = open(a).read()
    r = run(IR_TOOL, "diff", a, a)
    assert r.returncode == 0 and r.stdout == ""
    lines = text.splitlines()
    lines.insert(1, "  %77: f32[] = constant() {value=dense<f32[]>[7.0]}")   # renumbers nothing structural
    b = d / "inserted.ir"
    b.write_text("\n".join(lines) + "\n")
    r = run(IR_TOOL, "diff", a, str(b))
    assert r.returncode == 1
    changed = [ln for ln in r.stdout.splitlines() if ln[:1] in "+-" and not ln.startswith(("---", "+++"))]
    assert changed == ["+  %0: f32[] = constant() {value=dense<f32[]>[7.0]}"]
    c = d / "changed.ir"
    c.write_text(text.replace("= mul(", "= add("))
    r = run(IR_TOOL, "diff", a, str(c))
    assert r.returncode == 1 and "-  %1: f32[2,3] = mul(%arg0, %0)" in r.stdout and \
        "+  %1: f32[2,3] = add(%arg0, %0)" in r.stdout
    moved = d / "loc.ir"
    moved.write_text(text.replace("script.py:7", "other.py:1"))
    assert run(IR_TOOL, "diff", a, str(moved)).returncode == 0
    assert run(IR_TOOL, "diff", "--with-loc", a, str(moved)).returncode == 1


def test_op_coverage_table_and_exit_status():
    r = run(COVERAGE)
    assert r.returncode == 0, r.stderr
    head = r.stdout.splitlines()[0].split()
    assert head == ["op", "infer", "impl", "vjp", "jvp", "batch", "kind", "amp", "lower[llvm]", "lower[cuda]"]
    rows = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines()[2:]}
    assert {"add", "matmul", "conv2d", "scan", "cond"} <= set(rows)
    assert rows["add"][1:3] == ["yes", "yes"] and rows["eq"][3] == "nd"
    assert run(COVERAGE, "--markdown").stdout.startswith("| op | infer | impl |")


def test_op_coverage_fails_when_a_rule_is_missing():
    code = ("import sys; sys.path.insert(0, %r); import sporeflow.ir as ir\n"
            "from sporeflow.ir.registry import def_op\n"
            "def_op('half_done_op', infer=lambda ts, a: ts[0], impl=None)\n"
            "sys.path.insert(0, %r); import op_coverage; sys.exit(op_coverage.main([]))") % (
        ROOT, os.path.join(ROOT, "tools"))
    r = run("-c", code)
    assert r.returncode == 1 and "half_done_op.impl" in r.stderr


def test_mindspore_env_vars_turn_dumps_on(tmp_path):
    (tmp_path / "script.py").write_text(SCRIPT)
    env_code = "import os, runpy; runpy.run_path('script.py', run_name='__main__')"
    env = dict(os.environ, PYTHONPATH=ROOT, MS_DEV_SAVE_GRAPHS="1", MS_DEV_SAVE_GRAPHS_PATH=str(tmp_path / "d"))
    r = subprocess.run([sys.executable, "-c", env_code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "0000_step_traced.ir" in os.listdir(tmp_path / "d")
