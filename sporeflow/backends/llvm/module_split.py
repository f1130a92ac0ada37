"""Split one module's IR text into parts LLVM can optimize and compile at the same time.

Why: LLVM optimizes and generates code for one module on one thread, and that is most of a
cold compile (the MLP train step: 0.09 s of optimization + 0.06 s of code generation on
Zen 4). Two parts compile on two cores in about half the time; the loader links their
objects in one engine.

What may move: a kernel the module's entry reaches only through a function pointer (the
`*_omp` wrappers handed to GOMP_parallel), with every internal function it calls. Such a
kernel's arguments come from the thread split at run time, so no interprocedural
optimization is lost by compiling it apart. The entry functions, and every kernel they call
directly (often with constant loop bounds that interprocedural constant propagation folds
into the kernel), stay in part 0. A moved root becomes an external symbol defined in exactly
one part and declared in the part that references it; internal helpers (math functions) are
copied into every part that uses them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_DEFINE = re.compile(r"^define (internal )?([^@]*)@([\w.$]+)\((.*)\)([^()]*)\{$")
_REF = re.compile(r"@([\w.$]+)")
_CALL = re.compile(r"\bcall [^@]*@([\w.$]+)\(")
_PARAM_NAME = re.compile(r" %[\w.$-]+")

MIN_PART_LINES = 150   # a part smaller than this costs more in thread hand-off than it saves


@dataclass
class _Function:
    name: str
    internal: bool
    ret: str            # return type and attributes between `define` and the name
    params: str
    lines: list[str]
    refs: set[str] = field(default_factory=set)     # functions of this module it names
    calls: set[str] = field(default_factory=set)    # of those, the ones it calls directly


def _parse(text: str) -> tuple[list[str], list[_Function], list[str]]:
    """(lines before the first function, functions in order, lines after the last one)."""
    lines = text.split("\n")
    head: list[str] = []
    tail: list[str] = []
    functions: list[_Function] = []
    i = 0
    while i < len(lines):
        m = _DEFINE.match(lines[i])
        if m is None:
            (tail if functions else head).append(lines[i])
            i += 1
            continue
        end = lines.index("}", i)
        functions.append(_Function(m.group(3), bool(m.group(1)), m.group(2), m.group(4), lines[i:end + 1]))
        i = end + 1
    names = {f.name for f in functions}
    for f in functions:
        body = "\n".join(f.lines[1:])
        f.refs = {r for r in _REF.findall(body) if r in names and r != f.name}
        f.calls = {r for r in _CALL.findall(body) if r in names}
    return head, functions, tail


def split(text: str, parts: int, min_part_lines: int | None = None) -> list[str]:
    """`text` as at most `parts` modules (one when nothing worth moving); part 0 holds the
    entry functions. `min_part_lines`: MIN_PART_LINES unless given."""
    min_part_lines = MIN_PART_LINES if min_part_lines is None else min_part_lines
    if parts < 2:
        return [text]
    head, functions, tail = _parse(text)
    by_name = {f.name: f for f in functions}

    def closure(roots, stop=frozenset()) -> set[str]:
        seen: set[str] = set()
        todo = list(roots)
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo += [r for r in by_name[n].refs if r not in stop]
        return seen

    # part 0: the entries and everything they call directly, transitively
    fixed: set[str] = set()
    todo = [f.name for f in functions if not f.internal]
    while todo:
        n = todo.pop()
        if n not in fixed:
            fixed.add(n)
            todo += by_name[n].calls
    roots = sorted({r for n in fixed for r in by_name[n].refs} - fixed)
    if not roots:
        return [text]
    # defined in exactly one part: the entries and the moved roots; internal helpers are copied
    single = set(roots) | {f.name for f in functions if not f.internal}
    units = {r: closure([r], single - {r}) for r in roots}
    units[""] = closure(fixed, single - fixed)        # part 0's own
    cost = {r: sum(len(by_name[n].lines) for n in units[r]) for r in units}
    home = _balance(cost, parts, min_part_lines)
    if home is None:
        return [text]
    used = sorted(set(home.values()))

    def render(k: int) -> str:
        own = set().union(*(units[r] for r in units if home[r] == k))
        named = {r for n in own for r in by_name[n].refs} & single
        out = list(head)
        for f in functions:
            if f.name in own:
                first = f.lines[0].replace("define internal ", "define ", 1) if f.name in roots else f.lines[0]
                out += [first, *f.lines[1:]]
            elif f.name in named:     # a root another part defines
                out.append(f"declare {f.ret}@{f.name}({_PARAM_NAME.sub('', f.params)})")
        return "\n".join(out + tail)

    return [render(k) for k in used]


def _balance(cost: dict[str, int], parts: int, min_part_lines: int) -> dict[str, int] | None:
    """Unit -> part, largest unit first onto the lightest part ("" is part 0's own and stays
    there); the most parts whose lightest still holds `min_part_lines`, None below two."""
    for n in range(parts, 1, -1):
        load = [cost[""]] + [0] * (n - 1)
        home = {"": 0}
        for r in sorted((r for r in cost if r), key=lambda r: (-cost[r], r)):
            k = load.index(min(load))
            home[r] = k
            load[k] += cost[r]
        if min(load) >= min_part_lines:
            return home
    return None
