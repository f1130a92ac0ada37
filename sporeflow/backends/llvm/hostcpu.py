"""The host CPU the generated code targets: LLVM cpu name and feature string, vector width, FMA,
cache sizes. One place decides them, and `HostCPU.key()` goes into the object cache key, so
code compiled for one machine (or one setting) is never loaded for another.

Vector width. LLVM's cpu tuning decides how wide the vectorizer goes: Intel server cores (and
KVM guests that report an Intel client model with AVX-512, e.g. `rocketlake`) carry the
`prefer-256-bit` tuning, so even with AVX-512 present the loops came out as ymm code; Zen 4
does not. Measured here (2-core Xeon with AVX-512, KVM, loaded machine): the gelu*sigmoid
chain at 1M took 1.81 ms with ymm and ~1.3 ms with zmm, so on an AVX-512 host the default is
512-bit vectors (`-prefer-256-bit`).

Settings (read at each compile, so a test can switch them):
  SPOREFLOW_MAX_VECTOR_WIDTH=256  the AVX2 path: every AVX-512/AMX/AVX10 feature is turned off
                                  (no zmm and no EVEX-only instructions), ymm code with FMA.
  SPOREFLOW_MAX_VECTOR_WIDTH=128  SSE4-width vectors (AVX features off as well).
  SPOREFLOW_CPU_FEATURES=+f,-g    LLVM feature flags applied last (expert override).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import llvmlite.binding as llvm

_WIDE_PREFIXES = ("avx512", "avx10", "amx", "evex512")          # need 512-bit registers
_AVX_PREFIXES = ("avx", "fma", "f16c", "vaes", "vpclmulqdq", "gfni")  # VEX-encoded (128 path drops them)


@dataclass(frozen=True)
class HostCPU:
    name: str            # LLVM cpu name (tuning and scheduling model)
    features: str        # LLVM feature string the target machine gets
    vector_bits: int     # widest vector register the generated code may use
    fma: bool
    l1d: int             # bytes per core
    l2: int
    l3: int

    @property
    def f32_lanes(self) -> int:
        return self.vector_bits // 32

    def has(self, feature: str) -> bool:
        """Whether the generated code may use LLVM target feature `feature` (e.g. "avx512f")."""
        return f"+{feature}" in self.features.split(",")

    def key(self) -> str:
        return f"{self.name}|{self.features}|v{self.vector_bits}"

    def describe(self) -> str:
        isa = {512: "AVX-512", 256: "AVX2" if self.fma else "AVX", 128: "SSE"}.get(self.vector_bits, "?")
        return (f"{isa} ({self.vector_bits}-bit vectors{', FMA' if self.fma else ''}), llvm cpu {self.name}, "
                f"L1d {self.l1d >> 10} KiB, L2 {self.l2 >> 10} KiB, L3 {self.l3 >> 20} MiB")


def _cache_sizes() -> tuple[int, int, int]:
    sizes = {1: 32 << 10, 2: 1 << 20, 3: 32 << 20}       # fallbacks where sysfs is absent
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for d in os.listdir(root):
            if not d.startswith("index"):
                continue
            with open(f"{root}/{d}/level") as f:
                level = int(f.read())
            with open(f"{root}/{d}/type") as f:
                kind = f.read().strip()
            with open(f"{root}/{d}/size") as f:
                txt = f.read().strip()
            if kind == "Instruction":
                continue
            mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(txt[-1:], 1)
            sizes[level] = int(txt.rstrip("KMG")) * mult
    except (OSError, ValueError):
        pass
    return sizes[1], sizes[2], sizes[3]


def _apply(flags: dict[str, bool], spec: str) -> None:
    for item in spec.split(","):
        item = item.strip()
        if len(item) > 1 and item[0] in "+-":
            flags[item[1:]] = item[0] == "+"


@lru_cache(maxsize=8)
def _resolve(width_env: str, features_env: str) -> HostCPU:
    llvm.initialize_native_target()
    flags: dict[str, bool] = {}
    _apply(flags, llvm.get_host_cpu_features().flatten())
    max_bits = 512 if flags.get("avx512f") else 256 if flags.get("avx2") or flags.get("avx") else 128
    if width_env:
        try:
            want = int(width_env)
        except ValueError:
            raise ValueError(f"SPOREFLOW_MAX_VECTOR_WIDTH must be 128, 256 or 512, got {width_env!r}") from None
        if want not in (128, 256, 512):
            raise ValueError(f"SPOREFLOW_MAX_VECTOR_WIDTH must be 128, 256 or 512, got {width_env!r}")
        max_bits = min(max_bits, want)
    if max_bits < 512:
        for f in list(flags):
            if f.startswith(_WIDE_PREFIXES):
                flags[f] = False
    if max_bits < 256:
        for f in list(flags):
            if f.startswith(_AVX_PREFIXES):
                flags[f] = False
    if max_bits == 512:
        flags["prefer-256-bit"] = False       # see the module docstring: zmm where the host has it
    _apply(flags, features_env)
    bits = 512 if flags.get("avx512f") and not flags.get("prefer-256-bit") else \
        256 if flags.get("avx") else 128
    features = ",".join(("+" if on else "-") + f for f, on in sorted(flags.items()))
    return HostCPU(llvm.get_host_cpu_name(), features, bits, bool(flags.get("fma")), *_cache_sizes())


def host() -> HostCPU:
    """The target for code compiled now (settings read from the environment each call)."""
    return _resolve(os.environ.get("SPOREFLOW_MAX_VECTOR_WIDTH", "").strip(),
                    os.environ.get("SPOREFLOW_CPU_FEATURES", "").strip())
