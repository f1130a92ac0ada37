"""sporeflow dtypes as CUDA C types, and the prelude every translation unit starts with.

Storage types are the bytes in memory (half types are `unsigned short` bit patterns, bool is one
byte); compute types are what kernels calculate in: float16/bfloat16 in float (float32
accumulation), bool as `bool`, the rest as stored. Half results are rounded once per primitive,
exactly as the interpreter does (ir/dtypes.py), with the same round-to-nearest-even on the bits.
The prelude uses no header at all: NVRTC has no libc (INFINITY is undefined there), and the CPU
emulator includes its own shims.
"""
from __future__ import annotations

STORAGE = {"float32": "float", "float64": "double", "float16": "unsigned short", "bfloat16": "unsigned short",
           "int8": "signed char", "int16": "short", "int32": "int", "int64": "long long",
           "uint8": "unsigned char", "uint16": "unsigned short", "uint32": "unsigned int",
           "uint64": "unsigned long long", "bool": "unsigned char"}
COMPUTE = dict(STORAGE, float16="float", bfloat16="float", bool="bool")


def storage(dt) -> str:
    return STORAGE[dt.name]


def compute(dt) -> str:
    return COMPUTE[dt.name]


def load(dt, ref: str) -> str:
    """A storage element (an lvalue expression) widened to the compute type."""
    return {"float16": f"sf_h2f({ref})", "bfloat16": f"sf_b2f({ref})", "bool": f"({ref} != 0)"}.get(dt.name, ref)


def store(dt, val: str) -> str:
    """A compute value narrowed to the storage type."""
    return {"float16": f"sf_f2h({val})", "bfloat16": f"sf_f2b({val})",
            "bool": f"(unsigned char)({val})"}.get(dt.name, val)


def rounded(dt, val: str) -> str:
    """A float32 result rounded to its half type and widened back (identity otherwise)."""
    return {"float16": f"sf_h2f(sf_f2h({val}))", "bfloat16": f"sf_b2f(sf_f2b({val}))"}.get(dt.name, val)


def literal(value, dt) -> str:
    """A C literal of compute type."""
    if dt.name == "bool":
        return "true" if value else "false"
    if dt.is_float:
        v = float(value)
        if v != v:
            return "sf_nan_f()" if compute(dt) == "float" else "sf_nan_d()"
        if v in (float("inf"), float("-inf")):
            s = "-" if v < 0 else ""
            return f"({s}sf_inf_f())" if compute(dt) == "float" else f"({s}sf_inf_d())"
        return f"({v!r}f)" if compute(dt) == "float" else f"({v!r})"
    v = int(value)
    if dt.name == "int64":
        return f"({v}LL)" if v != -2 ** 63 else "(-9223372036854775807LL - 1)"
    if dt.name == "uint32":
        return f"({v}u)"
    if dt.name == "uint64":
        return f"({v}ULL)"
    if dt.name == "int32" and v == -2 ** 31:
        return "(-2147483647 - 1)"
    return f"(({compute(dt)}){v})"


def lowest(dt) -> str:
    """Identity of a max reduction."""
    if dt.is_float:
        return literal(float("-inf"), dt)
    import numpy as np
    return literal(int(np.iinfo(dt.storage).min) if dt.name != "bool" else 0, dt)


def highest(dt) -> str:
    """Identity of a min reduction."""
    if dt.is_float:
        return literal(float("inf"), dt)
    import numpy as np
    return literal(int(np.iinfo(dt.storage).max) if dt.name != "bool" else 1, dt)


PRELUDE = r"""
// ---- sporeflow CUDA prelude (no headers: NVRTC has no libc) ----
typedef unsigned long long sf_u64;
__device__ __forceinline__ float sf_inf_f() { return __int_as_float(0x7f800000); }
__device__ __forceinline__ float sf_nan_f() { return __int_as_float(0x7fc00000); }
__device__ __forceinline__ double sf_inf_d() { return __longlong_as_double(0x7ff0000000000000LL); }
__device__ __forceinline__ double sf_nan_d() { return __longlong_as_double(0x7ff8000000000000LL); }
// float16 <-> float32, round to nearest even (numpy's conversion), NaN stays NaN
__device__ __forceinline__ float sf_h2f(unsigned short h) {
  unsigned int sign = ((unsigned int)h & 0x8000u) << 16, e = ((unsigned int)h >> 10) & 0x1fu, m = (unsigned int)h & 0x3ffu;
  if (e == 0) { float v = (float)m * 5.9604644775390625e-8f; return sign ? -v : v; }
  if (e == 31) return __uint_as_float(sign | 0x7f800000u | (m << 13));
  return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
}
__device__ __forceinline__ unsigned short sf_f2h(float f) {
  unsigned int x = __float_as_uint(f), sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return (unsigned short)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  if (ax >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);
  if (ax < 0x38800000u) return (unsigned short)(sign | (unsigned int)rintf(__uint_as_float(ax) * 16777216.0f));
  unsigned int r = ax - 0x38000000u;
  return (unsigned short)(sign | ((r + 0x0fffu + ((r >> 13) & 1u)) >> 13));
}
// bfloat16 = the upper half of the float32 bits, round to nearest even, NaN -> quiet NaN
__device__ __forceinline__ float sf_b2f(unsigned short b) { return __uint_as_float(((unsigned int)b) << 16); }
__device__ __forceinline__ unsigned short sf_f2b(float f) {
  unsigned int u = __float_as_uint(f), hi = u >> 16;
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)(hi | 64u);
  return (unsigned short)((u + (hi & 1u) + 32767u) >> 16);
}
// wrapping integer arithmetic (signed overflow is undefined in C; numpy wraps)
#define SF_WRAP(T, U) \
  __device__ __forceinline__ T sf_add(T a, T b) { return (T)((U)a + (U)b); } \
  __device__ __forceinline__ T sf_sub(T a, T b) { return (T)((U)a - (U)b); } \
  __device__ __forceinline__ T sf_mul(T a, T b) { return (T)((U)a * (U)b); } \
  __device__ __forceinline__ T sf_neg(T a) { return (T)((U)0 - (U)a); }
SF_WRAP(signed char, unsigned int) SF_WRAP(short, unsigned int) SF_WRAP(int, unsigned int)
SF_WRAP(long long, unsigned long long) SF_WRAP(unsigned char, unsigned int) SF_WRAP(unsigned int, unsigned int)
SF_WRAP(unsigned short, unsigned int) SF_WRAP(unsigned long long, unsigned long long)
__device__ __forceinline__ float sf_add(float a, float b) { return a + b; }
__device__ __forceinline__ double sf_add(double a, double b) { return a + b; }
__device__ __forceinline__ float sf_sub(float a, float b) { return a - b; }
__device__ __forceinline__ double sf_sub(double a, double b) { return a - b; }
__device__ __forceinline__ float sf_mul(float a, float b) { return a * b; }
__device__ __forceinline__ double sf_mul(double a, double b) { return a * b; }
__device__ __forceinline__ float sf_neg(float a) { return -a; }
__device__ __forceinline__ double sf_neg(double a) { return -a; }
// numpy's maximum/minimum: NaN from either side propagates, a tie returns the second operand
template <class T> __device__ __forceinline__ T sf_max(T a, T b) { return (!(a <= b) && b == b) ? a : b; }
template <class T> __device__ __forceinline__ T sf_min(T a, T b) { return (!(a >= b) && b == b) ? a : b; }
template <class T> __device__ __forceinline__ T sf_abs(T a) { return a < (T)0 ? sf_neg(a) : a; }
__device__ __forceinline__ float sf_abs(float a) { return fabsf(a); }
__device__ __forceinline__ double sf_abs(double a) { return fabs(a); }
__device__ __forceinline__ unsigned char sf_abs(unsigned char a) { return a; }
__device__ __forceinline__ unsigned int sf_abs(unsigned int a) { return a; }
template <class T> __device__ __forceinline__ T sf_sign(T x) { return x > (T)0 ? (T)1 : (x < (T)0 ? (T)-1 : (T)0); }
__device__ __forceinline__ float sf_sign(float x) { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : (x == 0.0f ? 0.0f : x)); }
__device__ __forceinline__ double sf_sign(double x) { return x > 0.0 ? 1.0 : (x < 0.0 ? -1.0 : (x == 0.0 ? 0.0 : x)); }
__device__ __forceinline__ unsigned char sf_sign(unsigned char x) { return x > 0 ? 1 : 0; }
__device__ __forceinline__ unsigned int sf_sign(unsigned int x) { return x > 0u ? 1u : 0u; }
__device__ __forceinline__ bool sf_isfinite(float x) { return (__float_as_uint(x) & 0x7f800000u) != 0x7f800000u; }
__device__ __forceinline__ bool sf_isfinite(double x) {
  return (__double_as_longlong(x) & 0x7ff0000000000000LL) != 0x7ff0000000000000LL;
}
// float -> int: truncate toward zero, saturate, NaN -> 0 (the `cast` primitive)
#define SF_SAT(NAME, T, LO, HI) \
  __device__ __forceinline__ T NAME(double v) { \
    double t = trunc(v); \
    if (t >= (double)(HI)) return (T)(HI); \
    if (t <= (double)(LO)) return (T)(LO); \
    if (t != t) return (T)0; \
    return (T)t; }
SF_SAT(sf_sat_i8, signed char, -128, 127) SF_SAT(sf_sat_i16, short, -32768, 32767)
SF_SAT(sf_sat_i32, int, (-2147483647 - 1), 2147483647) SF_SAT(sf_sat_u8, unsigned char, 0, 255)
SF_SAT(sf_sat_u32, unsigned int, 0, 4294967295.0) SF_SAT(sf_sat_u16, unsigned short, 0, 65535)
__device__ __forceinline__ unsigned long long sf_sat_u64(double v) {
  double t = trunc(v);
  if (t >= 18446744073709551615.0) return 18446744073709551615ULL;
  if (t <= 0.0 || t != t) return 0ULL;
  return (unsigned long long)t;
}
__device__ __forceinline__ long long sf_sat_i64(double v) {
  double t = trunc(v);
  if (t >= 9223372036854775807.0) return 9223372036854775807LL;
  if (t <= -9223372036854775808.0) return (-9223372036854775807LL - 1);
  if (t != t) return 0;
  return (long long)t;
}
// reductions inside a block: warp shuffles, then one partial per warp through shared memory.
// blockDim.x is a multiple of 32 and every thread calls it (it synchronizes the block).
struct SfSum { template <class T> __device__ __forceinline__ static T f(T a, T b) { return sf_add(a, b); } };
struct SfMax { template <class T> __device__ __forceinline__ static T f(T a, T b) { return sf_max(a, b); } };
struct SfMin { template <class T> __device__ __forceinline__ static T f(T a, T b) { return sf_min(a, b); } };
template <class Op, class T> __device__ __forceinline__ T sf_block_reduce(T v, T identity) {
  __shared__ T part[33];
  for (int o = 16; o > 0; o >>= 1) v = Op::f(v, (T)__shfl_xor_sync(0xffffffffu, v, o));
  unsigned lane = threadIdx.x & 31u, w = threadIdx.x >> 5, nw = (blockDim.x + 31u) >> 5;
  if (lane == 0) part[w] = v;
  __syncthreads();
  if (w == 0) {
    T t = lane < nw ? part[lane] : identity;
    for (int o = 16; o > 0; o >>= 1) t = Op::f(t, (T)__shfl_xor_sync(0xffffffffu, t, o));
    if (lane == 0) part[32] = t;
  }
  __syncthreads();
  T r = part[32];
  __syncthreads();
  return r;
}
"""
