"""Kernels and the one translation unit per graph that holds them.

Every kernel is `extern "C" __global__` and takes only buffer pointers: shapes are static, so
sizes, strides and loop bounds are literals in the code (the compiler folds the index
arithmetic). The file holds no host code, no <<<>>> launches and no libc: the same text
compiles with NVRTC for the device and with g++ against emulator/cucpu.h for the CPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .ctypes_c import PRELUDE, storage

ELEMENTWISE_BLOCK = 256
MAX_GRID = 4096          # grid-stride loops: more blocks than this only add scheduling


@dataclass
class Kernel:
    name: str
    params: list          # [(C type, name, is_output)] — pointers, in launch order
    body: str             # the statements inside the function
    grid: int
    block: int
    sync: bool = False    # uses __syncthreads / warp shuffles (the emulator runs fibres)

    def source(self) -> str:
        ps = ", ".join(f"{'' if out else 'const '}{ty}* __restrict__ {n}" for ty, n, out in self.params)
        return (f'extern "C" __global__ void __launch_bounds__({self.block}) {self.name}({ps}) {{\n'
                f"{self.body}}}\n")

    def export_line(self) -> str:
        """The emulator's entry for this kernel (cucpu.h CUCPU_EXPORT)."""
        args = ", ".join(f"({'' if out else 'const '}{ty}*)a[k]".replace("[k]", f"[{k}]")
                         for k, (ty, _, out) in enumerate(self.params))
        return f"CUCPU_EXPORT({self.name}, {'true' if self.sync else 'false'}, {self.name}({args}))"


def pointer_params(ins, outs) -> list:
    """Params for input values (const) then output values."""
    return ([(storage(v.dtype), f"in{k}", False) for k, v in enumerate(ins)]
            + [(storage(v.dtype), f"out{k}", True) for k, v in enumerate(outs)])


def grid_for(n: int, block: int = ELEMENTWISE_BLOCK) -> int:
    return max(1, min(-(-n // block), MAX_GRID))


def grid_stride(n: int, var: str = "i") -> str:
    return (f"  for (long long {var} = (long long)blockIdx.x * blockDim.x + threadIdx.x; {var} < {n}LL; "
            f"{var} += (long long)gridDim.x * blockDim.x) {{\n")


def coords(prefix: str, index: str, shape, indent: str = "    ") -> str:
    """`long long {prefix}k = ...;` for the row-major coordinates of linear `index` in `shape`."""
    lines, acc = [], 1
    strides = []
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    strides = strides[::-1]
    for k, (d, s) in enumerate(zip(shape, strides)):
        q = index if s == 1 else f"({index} / {s}LL)"
        lines.append(f"{indent}long long {prefix}{k} = {q if k == 0 else f'{q} % {d}LL'};\n")
    return "".join(lines)


def linear(cs: list[str], strides) -> str:
    terms = [c if s == 1 else f"{c} * {s}LL" for c, s in zip(cs, strides) if s]
    return " + ".join(terms) if terms else "0"


@dataclass
class Module:
    """The translation unit of one graph (its control-flow subgraphs included)."""
    name: str
    kernels: list = field(default_factory=list)
    _names: set = field(default_factory=set)

    def unique(self, base: str) -> str:
        base = "".join(ch if ch.isalnum() else "_" for ch in base)[:40] or "k"
        name, k = f"k{len(self.kernels)}_{base}", 0
        while name in self._names:
            k += 1
            name = f"k{len(self.kernels)}_{base}_{k}"
        self._names.add(name)
        return name

    def add(self, kernel: Kernel) -> Kernel:
        self.kernels.append(kernel)
        return kernel

    def source(self) -> str:
        head = f"// sporeflow CUDA translation unit for @{self.name}: {len(self.kernels)} kernels\n"
        return head + PRELUDE + "\n" + "\n".join(k.source() for k in self.kernels)

    def emulator_exports(self) -> str:
        return "\n".join(k.export_line() for k in self.kernels) + "\n"
