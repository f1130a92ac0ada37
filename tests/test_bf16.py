"""bfloat16 as documented in sporeflow/ir/dtypes.py: uint16 storage of the upper float32 bits,
exact widening, round-to-nearest-even narrowing (once, also from float64), NaN/Inf, and what
Tensor(..., sf.bfloat16) hands back."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import example, given, strategies as st

import sporeflow as sf
from sporeflow.ir import dtypes as D

ALL_BITS = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


def ref_round(x: float) -> int:
    """Reference float -> bf16 bits by exact arithmetic: nearest of the bracketing bf16 values,
    ties to the even mantissa (Python floats/fractions, no numpy rounding involved)."""
    from fractions import Fraction
    if math.isnan(x):
        raise ValueError
    finite = D.bf16_bits_to_f32(ALL_BITS)
    ok = np.isfinite(finite)
    vals, bits = finite[ok].astype(np.float64), ALL_BITS[ok]
    order = np.argsort(vals, kind="stable")
    vals, bits = vals[order], bits[order]
    max_bf16 = Fraction(float(vals[-1]))
    half_ulp_top = Fraction(2) ** (127 - 7) / 2      # half an ulp above the largest finite value
    fx = Fraction(x) if math.isfinite(x) else None
    if fx is None or fx >= max_bf16 + half_ulp_top:
        return 0x7F80 if x > 0 else 0xFF80
    if fx <= -(max_bf16 + half_ulp_top):
        return 0xFF80
    i = int(np.searchsorted(vals, x))
    cands = [j for j in (i - 1, i) if 0 <= j < len(vals)]
    best = min(cands, key=lambda j: (abs(Fraction(float(vals[j])) - fx), int(bits[j]) & 1))
    b = int(bits[best])
    if vals[best] == 0:                                # keep the sign of zero
        b = 0x8000 if math.copysign(1, x) < 0 else 0
    return b


def test_every_bf16_value_round_trips_exactly():
    f = D.bf16_bits_to_f32(ALL_BITS)
    assert f.dtype == np.float32
    back = D.f32_to_bf16_bits(f)
    nan = np.isnan(f)
    np.testing.assert_array_equal(back[~nan], ALL_BITS[~nan])
    assert np.isnan(D.bf16_bits_to_f32(back[nan])).all()
    # widening is exact: the float32 pattern is the bf16 bits followed by 16 zero bits
    np.testing.assert_array_equal(f.view(np.uint32), ALL_BITS.astype(np.uint32) << 16)


@given(st.integers(0, 2 ** 32 - 1))
def test_float32_rounds_to_nearest_even(bits):
    x = np.array([bits], np.uint32).view(np.float32)
    if np.isnan(x[0]):
        return
    assert int(D.f32_to_bf16_bits(x)[0]) == ref_round(float(x[0]))


@given(st.floats(allow_nan=False, width=64))
def test_float64_rounds_once(x):
    """No double rounding through float32 (round-to-odd keeps it exact)."""
    assert int(D.f32_to_bf16_bits(np.array([x]))[0]) == ref_round(x)


def test_ties_go_to_even_and_known_values():
    one = 1.0
    ulp = 2.0 ** -7
    cases = [(one + ulp / 2, 0x3F80),            # tie, 1.0 has an even mantissa: stays
             (one + 3 * ulp / 2, 0x3F82),        # tie between 1+ulp (odd) and 1+2ulp (even): up
             (one + ulp / 2 + 2 ** -20, 0x3F81),  # just above the tie: up
             (-2.0, 0xC000), (0.0, 0), (-0.0, 0x8000), (3.0e38, 0x7F62), (3.4e38, 0x7F80),
             (float("inf"), 0x7F80), (float("-inf"), 0xFF80), (1e-40, 0x0001)]
    got = D.f32_to_bf16_bits(np.array([x for x, _ in cases], np.float32))
    assert [hex(int(b)) for b in got] == [hex(b) for _, b in cases]
    # 1 + 2^-8 + 2^-30 is above the tie; float32 would round it to the tie (1 + 2^-8) first
    assert int(D.f32_to_bf16_bits(np.array([1.0 + 2.0 ** -8 + 2.0 ** -30]))[0]) == 0x3F81


def test_nan_stays_a_quiet_nan_with_its_sign():
    pats = np.array([0x7FC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF], np.uint32).view(np.float32)
    b = D.f32_to_bf16_bits(pats)
    assert all(int(v) & 0x7FC0 == 0x7FC0 for v in b)
    assert [int(v) >> 15 for v in b] == [0, 0, 1, 0]


def test_tensor_bf16_behaves_as_documented():
    src = np.array([1.0 + 2 ** -8 + 2 ** -20, -3.14159, 1e30, np.inf, np.nan], np.float32)
    t = sf.Tensor(src, sf.bfloat16)
    assert t.dtype is sf.bfloat16 and t._data.dtype == np.uint16
    a = t.asnumpy()
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a[:4], D.bf16_bits_to_f32(D.f32_to_bf16_bits(src))[:4])
    assert a[0] == 1.0078125 and a[1] == -3.140625 and np.isinf(a[3]) and np.isnan(a[4])
    assert "BFloat16" in repr(t)
    # given uint16 with dtype=bfloat16, the array is taken as bits
    assert sf.Tensor(np.array([0x3F80], np.uint16), sf.bfloat16).asnumpy()[0] == 1.0
    # Python floats round once too
    assert sf.Tensor([1.0 + 2 ** -8 + 2 ** -30], sf.bfloat16).asnumpy()[0] == 1.0078125
    # casts: bf16 -> f32 exact; f32 -> bf16 rounds
    np.testing.assert_array_equal(t.astype(sf.float32).asnumpy()[:4], a[:4])
    assert sf.Tensor(src).astype(sf.bfloat16)._data.tolist()[:4] == t._data.tolist()[:4]


@given(st.lists(st.floats(-1e4, 1e4, width=32), min_size=1, max_size=8))
@example(xs=[6832.0])
def test_bf16_arithmetic_is_float32_then_one_rounding(xs):
    a = sf.Tensor(np.array(xs, np.float32), sf.bfloat16)
    b = sf.Tensor(np.array(xs[::-1], np.float32), sf.bfloat16)
    for op, ref in [(lambda p, q: p + q, np.add), (lambda p, q: p * q, np.multiply),
                    (lambda p, q: sf.ops.exp(p * 0.001) / (q * q + 1.0), None)]:
        got = op(a, b)
        assert got.dtype is sf.bfloat16
        if ref is not None:
            want = D.f32_to_bf16_bits(ref(a.asnumpy(), b.asnumpy()))
            np.testing.assert_array_equal(got._data, want)
        for backend in ("interp", "llvm"):   # fused LLVM kernels round after every member too
            jitted = sf.jit(op, backend=backend)(a, b)
            if backend == "interp" or ref is not None:
                np.testing.assert_array_equal(jitted._data, got._data, err_msg=backend)
            else:
                # exp: LLVM's float32 polynomial and numpy's float32 exp are each within 1 ulp but not
                # always equal; where a result sits on a bf16 rounding boundary the bf16 results then
                # differ by one bf16 ulp (found by hypothesis: x = 6832, exp(6.84375) = 938.0000478,
                # numpy gives 938.0, a bf16 tie that rounds down; 938.00006 rounds up)
                ulps = np.abs(got._data.astype(np.int64) - jitted._data.astype(np.int64))
                assert ulps.max() <= 1, (backend, got._data, jitted._data)


def test_bf16_mixed_with_float16_promotes_to_float32():
    r = sf.Tensor([1.0], sf.bfloat16) + sf.Tensor([1.0], sf.float16)
    assert r.dtype is sf.float32 and r.asnumpy()[0] == 2.0


def test_python_conversions_of_bf16_use_values_not_bits():
    assert int(sf.Tensor(2.0, sf.bfloat16)) == 2 and float(sf.Tensor(2.5, sf.bfloat16)) == 2.5
    assert not bool(sf.Tensor(-0.0, sf.bfloat16)) and bool(sf.Tensor(0.5, sf.bfloat16))
    assert sf.Tensor(1.5, sf.bfloat16).item() == 1.5 and sf.Tensor([1.5], sf.bfloat16).tolist() == [1.5]
    assert np.asarray(sf.Tensor([3.0], sf.bfloat16)).dtype == np.float32
