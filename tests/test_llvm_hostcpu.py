"""Host-adaptive code generation: the vector width follows the host (AVX-512 where present) and
SPOREFLOW_MAX_VECTOR_WIDTH=256 forces the AVX2 path; on both, the float32 gelu*sigmoid chain
kernel is vector code with the exp polynomial inlined (no scalar libm call), and the setting is
part of the object cache key."""
import math
import re

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import ops
from sporeflow.backends.llvm import hostcpu, jit

C = math.sqrt(2.0 / math.pi)


def chain(x, a, b):
    z = x * a + b
    g = 0.5 * z * (1.0 + ops.tanh(C * (z + 0.044715 * z * z * z)))
    return g * ops.sigmoid(x)


def _compiled_asm(n=4096):
    r = np.random.default_rng(0)
    xs = [(r.standard_normal(n) * s).astype(np.float32) for s in (3, 1, 1)]
    f = sf.jit(chain, backend="llvm")
    out = f(*[sf.Tensor(v) for v in xs]).asnumpy()
    x, a, b = [v.astype(np.float64) for v in xs]
    z = x * a + b
    ref = 0.5 * z * (1 + np.tanh(C * (z + 0.044715 * z ** 3))) / (1 + np.exp(-x))
    np.testing.assert_allclose(out, ref, rtol=2e-5, atol=2e-6)
    (c,) = f._cache.values()
    return c.executable.asm


@pytest.mark.parametrize("width", ["256", "512"])
def test_chain_kernel_vectorizes(monkeypatch, width):
    host_bits = hostcpu._resolve("", "").vector_bits
    if int(width) > host_bits:
        pytest.skip(f"host has no {width}-bit vectors (max {host_bits})")
    monkeypatch.setenv("SPOREFLOW_MAX_VECTOR_WIDTH", width)
    cpu = hostcpu.host()
    assert cpu.vector_bits == int(width) and cpu.fma
    asm = _compiled_asm()
    calls = set(re.findall(r"call\w*\s+(\S+)", asm))
    assert not [c for c in calls if re.search(r"exp|tanh|sigm", c)], calls
    reg = "zmm" if width == "512" else "ymm"
    assert len(re.findall(rf"v(?:fmadd|fnmadd)\w*ps\s+[^\n]*%{reg}", asm)) >= 8, "no vector FMAs"
    if width == "256":
        assert "%zmm" not in asm


def test_width_setting_is_in_the_cache_key(monkeypatch):
    monkeypatch.setenv("SPOREFLOW_MAX_VECTOR_WIDTH", "256")
    k256 = jit.cache_key("define void @f() { ret void }")
    monkeypatch.setenv("SPOREFLOW_MAX_VECTOR_WIDTH", "128")
    k128 = jit.cache_key("define void @f() { ret void }")
    assert k256 != k128
    assert hostcpu.host().vector_bits == 128 and not hostcpu.host().fma


def test_bad_width_setting_is_refused(monkeypatch):
    monkeypatch.setenv("SPOREFLOW_MAX_VECTOR_WIDTH", "300")
    with pytest.raises(ValueError, match="SPOREFLOW_MAX_VECTOR_WIDTH"):
        hostcpu.host()
