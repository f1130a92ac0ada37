"""Host-adaptive code generation: the vector width follows the host (AVX-512 where present) and
SPOREFLOW_MAX_VECTOR_WIDTH=256 forces the AVX2 path; on both, the float32 gelu*sigmoid chain
kernel is vector code with the exp polynomial inlined (no scalar libm call, ldexpf included;
with AVX-512 exp's 2^n is one vscalefps), and the setting is part of the object cache key. Row
reductions (sum, max, min over the last axis, alone and inside the fused softmax) reach the
loop vectorizer: vector adds / max / min, no scalar chain. A vectorized row loop stays a loop,
and the LLVM options are part of the cache key."""
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
        assert "%zmm" not in asm and "vscalef" not in asm
    else:
        assert re.search(r"vscalefps\s+[^\n]*%zmm", asm), "exp's 2^n is not one vscalefps"


ROW_CASES = {"sum": (lambda a: ops.sum(a, 1), lambda a: a.sum(1), r"vaddps"),
             "amax": (lambda a: ops.amax(a, 1), lambda a: a.max(1), r"vmaxps"),
             "amin": (lambda a: ops.amin(a, 1), lambda a: a.min(1), r"vminps"),
             "softmax": (lambda a: ops.softmax(a, -1), None, r"vmaxps")}


@pytest.mark.parametrize("width", ["256", "512"])
@pytest.mark.parametrize("case", sorted(ROW_CASES))
@pytest.mark.parametrize("cols", [64, 3000])
def test_row_reductions_vectorize(monkeypatch, width, case, cols):
    """Short constant row lengths used to be fully unrolled before the loop vectorizer saw them
    (a serial scalar chain), and a max beside its NaN flag stayed scalar: both read in the asm."""
    host_bits = hostcpu._resolve("", "").vector_bits
    if int(width) > host_bits:
        pytest.skip(f"host has no {width}-bit vectors (max {host_bits})")
    monkeypatch.setenv("SPOREFLOW_MAX_VECTOR_WIDTH", width)
    fn, ref, vec_op = ROW_CASES[case]
    x = np.random.default_rng(1).standard_normal((64, cols)).astype(np.float32)
    x[5, 17] = np.nan
    f = sf.jit(fn, backend="llvm")
    out = f(sf.Tensor(x)).asnumpy()
    if ref is not None:
        np.testing.assert_allclose(out, ref(x.astype(np.float64)), rtol=1e-5, atol=1e-4)
        assert np.isnan(out[5]) and not np.isnan(np.delete(out, 5)).any()
    (c,) = f._cache.values()
    reg = "zmm" if width == "512" else "ymm"
    asm = c.executable.asm
    assert re.search(rf"{vec_op}\s+[^\n]*%{reg}", asm), f"no vector {vec_op} on %{reg}"
    # an unrolled scalar chain reads element after element from memory; the horizontal sums
    # at the end of each row work on registers
    scalar_reads = re.findall(r"v(?:movss|addss|maxss|minss)\s+-?\d*\(%", asm)
    assert len(scalar_reads) < 8, f"{len(scalar_reads)} scalar element reads: a scalar chain in the row kernel"


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


def test_vectorized_row_loop_is_not_unrolled_again():
    """A long innermost loop is vectorized and then left as a loop: LLVM used to unroll the vector
    loop of a 512-wide row fully (32 vector adds for one row), which cost compile time (MLP train
    step 0.31 -> 0.23 s) and no step got faster."""
    def add_relu(x, b):
        return ops.maximum(x + b, 0.0)
    r = np.random.default_rng(2)
    x, b = r.standard_normal((128, 512)).astype(np.float32), r.standard_normal(512).astype(np.float32)
    f = sf.jit(add_relu, backend="llvm")
    np.testing.assert_array_equal(f(sf.Tensor(x), sf.Tensor(b)).asnumpy(), np.maximum(x + b, 0))
    (c,) = f._cache.values()
    adds = re.findall(r"vaddps\s", c.executable.asm)
    assert 1 <= len(adds) <= 4, f"{len(adds)} vector adds for one 512-wide row: the vector loop was unrolled"


def test_llvm_options_are_in_the_cache_key(monkeypatch):
    text = "define void @f() { ret void }"
    key = jit.cache_key(text)
    assert all(option in jit.target_id() for option in jit.LLVM_OPTIONS)
    monkeypatch.setattr(jit, "LLVM_OPTIONS", ())
    assert jit.cache_key(text) != key
