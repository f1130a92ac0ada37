"""Every primitive on the CUDA backend (its generated CUDA C run by the CPU emulator, and
compiled by NVRTC when the `gpu` extra is installed) equals the interpreter, over the same
hypothesis-drawn shapes, dtypes (float32/float16/bfloat16/float64/integers/bool), attributes and
special values as the LLVM op tests, with the same tolerances (test_llvm_ops.py).

Compile time dominates (g++ of one translation unit, ~0.5 s): each example puts several drawn
cases of one op into one graph; the compiled objects are cached on disk by content hash.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sporeflow.backends import get_backend
from sporeflow.backends.cuda import missing_lowerings
from sporeflow.ir import REGISTRY, run_graph

from test_llvm_ops import _scale, assert_close, build, sprinkle
from test_ops_infer import GENERATORS, case


def test_every_primitive_has_a_cuda_lowering():
    assert missing_lowerings() == []
    assert all("cuda" in REGISTRY[n].lower for n in GENERATORS)


@pytest.mark.parametrize("op", sorted(GENERATORS))
def test_primitive_matches_interpreter_on_cuda_emulator(op):

    # two examples: the first one hypothesis draws is the minimal case (1-element tensors, zero
    # attributes), the second a random one
    @settings(max_examples=2)
    @given(st.lists(case(op), min_size=6, max_size=10), st.integers(0, 2 ** 31))
    def check(cases, seed):
        rng = np.random.default_rng(seed)
        cases = [(t, a, sprinkle(rng, arr, t, op, a)) for t, a, arr in cases]
        g, feeds, meta = build(op, cases)
        ref = run_graph(g, feeds)
        be = get_backend("cuda-emulated")
        got = [be.device.asnumpy(a) for a in be.compile(g)(*[be.device.upload(f) for f in feeds])]
        for k, (r, x, v) in enumerate(zip(ref, got, g.outputs)):
            types, attrs, arrays = meta[k]
            what = f"{op} case {k}: {[str(t) for t in types]} {attrs} inputs={arrays}"
            assert_close(op, x, r, v.dtype, _scale(op, types, arrays, attrs), what)
    check()
