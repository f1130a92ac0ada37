"""The default is compiled: a fresh process that never calls set_context runs `sf.jit` and
`Model.train` through the LLVM backend (MindSpore's default on a CPU machine is CPU). The test
fixture pins INTERP per test, so this runs in a subprocess to see the real default."""
import os
import subprocess
import sys
import textwrap

import sporeflow as sf

SCRIPT = textwrap.dedent("""
    import numpy as np
    import sporeflow as sf
    from sporeflow import nn
    from sporeflow.backends.llvm.executable import LLVMExecutable
    from sporeflow.train import Model

    assert sf.get_context("device_target") == "CPU", sf.get_context("device_target")

    f = sf.jit(lambda x: sf.ops.exp(x) * 2.0)
    x = sf.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_allclose(f(x).asnumpy(), np.exp(x.asnumpy()) * 2.0, rtol=1e-6)
    (compiled,) = f._cache.values()
    print("jit", type(compiled.executable).__name__)

    class DS:
        def __init__(self):
            r = np.random.default_rng(0)
            self.b = [(r.standard_normal((4, 5)).astype(np.float32), r.integers(0, 3, 4).astype(np.int32))
                      for _ in range(2)]
        def get_dataset_size(self): return len(self.b)
        def create_tuple_iterator(self, num_epochs=-1): return iter([tuple(sf.Tensor(a) for a in t) for t in self.b])

    sf.set_seed(0)
    net = nn.Dense(5, 3)
    model = Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"),
                  nn.Momentum(net.trainable_params(), 0.1, 0.9))
    model.train(1, DS())
    kinds = {type(c.executable).__name__ for j in model._jits.values() for c in j._cache.values()}
    print("train", ",".join(sorted(kinds)))
""")


def test_fresh_process_defaults_to_llvm(tmp_path):
    env = dict(os.environ, SPOREFLOW_CACHE_DIR=str(tmp_path))
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(sf.__file__))) + os.pathsep + \
        env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.split("\n") if line)
    assert lines["jit"] == "LLVMExecutable"
    assert lines["train"] == "LLVMExecutable"


def test_interp_stays_selectable():
    sf.set_context(device_target="INTERP")
    assert sf.get_context("device_target") == "INTERP"
    f = sf.jit(lambda x: x + 1.0)
    f(sf.Tensor([1.0]))
    (compiled,) = f._cache.values()
    assert "LLVM" not in type(compiled.executable).__name__
