"""Pytrees: tuples, lists, dicts (sorted keys), OrderedDicts (their order), namedtuples and None
nest; all else is a leaf."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable


class TreeDef:
    """Hashable structure of a pytree (leaves replaced by slots)."""
    __slots__ = ("kind", "meta", "children", "_hash")

    def __init__(self, kind: str, meta: Any, children: tuple):
        self.kind, self.meta, self.children = kind, meta, children
        self._hash = hash((kind, meta, children))

    @property
    def num_leaves(self) -> int:
        return 1 if self.kind == "leaf" else sum(c.num_leaves for c in self.children)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return isinstance(other, TreeDef) and (self.kind, self.meta, self.children) == (
            other.kind, other.meta, other.children)

    def __repr__(self) -> str:
        if self.kind == "leaf":
            return "*"
        if self.kind == "none":
            return "None"
        inner = ", ".join(map(repr, self.children))
        if self.kind in ("dict", "odict"):
            inner = ", ".join(f"{k!r}: {c!r}" for k, c in zip(self.meta, self.children))
            return ("OrderedDict" if self.kind == "odict" else "") + "{" + inner + "}"
        if self.kind == "tuple":
            return f"({inner},)" if len(self.children) == 1 else f"({inner})"
        if self.kind == "list":
            return f"[{inner}]"
        return f"{self.meta.__name__}({inner})"


LEAF = TreeDef("leaf", None, ())


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def tree_flatten(x) -> tuple[list, TreeDef]:
    leaves: list = []
    return leaves, _flatten(x, leaves)


_NO_KWARGS = TreeDef("dict", (), ())
_ARGS_TREEDEFS: dict[int, TreeDef] = {}


def flatten_call(args: tuple, kwargs: dict, leaf_types: tuple) -> tuple[list, TreeDef]:
    """tree_flatten((args, kwargs)), with a shortcut for the common call of a compiled function:
    no keyword arguments and every argument of a type in `leaf_types` (exact types: a subclass
    could be a namedtuple). The shortcut gives the same leaves and an equal TreeDef."""
    if kwargs or not all(type(a) in leaf_types for a in args):
        return tree_flatten((args, kwargs))
    td = _ARGS_TREEDEFS.get(len(args))
    if td is None:
        td = _ARGS_TREEDEFS[len(args)] = TreeDef("tuple", None, (TreeDef("tuple", None, (LEAF,) * len(args)),
                                                                  _NO_KWARGS))
    return list(args), td


def _flatten(x, leaves: list) -> TreeDef:
    if x is None:
        return TreeDef("none", None, ())
    if _is_namedtuple(x):
        return TreeDef("namedtuple", type(x), tuple(_flatten(c, leaves) for c in x))
    if type(x) is tuple:
        return TreeDef("tuple", None, tuple(_flatten(c, leaves) for c in x))
    if type(x) is list:
        return TreeDef("list", None, tuple(_flatten(c, leaves) for c in x))
    if type(x) is dict:
        keys = tuple(sorted(x, key=repr))
        return TreeDef("dict", keys, tuple(_flatten(x[k], leaves) for k in keys))
    if type(x) is OrderedDict:   # insertion order is part of its meaning
        keys = tuple(x)
        return TreeDef("odict", keys, tuple(_flatten(x[k], leaves) for k in keys))
    leaves.append(x)
    return LEAF


def tree_unflatten(treedef: TreeDef, leaves) -> Any:
    it = iter(leaves)
    out = _unflatten(treedef, it)
    return out


def _unflatten(td: TreeDef, it) -> Any:
    if td.kind == "leaf":
        return next(it)
    if td.kind == "none":
        return None
    kids = [_unflatten(c, it) for c in td.children]
    if td.kind == "tuple":
        return tuple(kids)
    if td.kind == "list":
        return kids
    if td.kind == "dict":
        return dict(zip(td.meta, kids))
    if td.kind == "odict":
        return OrderedDict(zip(td.meta, kids))
    return td.meta(*kids)


def tree_map(fn: Callable, x, *rest) -> Any:
    leaves, td = tree_flatten(x)
    others = [tree_flatten(r)[0] for r in rest]
    return tree_unflatten(td, [fn(*args) for args in zip(leaves, *others)])


def tree_leaves(x) -> list:
    return tree_flatten(x)[0]


def split_leaves(leaves, dynamic: Callable[[Any], bool]) -> tuple[dict[int, Any], list]:
    """Leaves -> ({position: leaf} of the static ones, [the dynamic ones, in order]); what a
    traced function returns is so split into graph outputs and values kept as they are."""
    static = {i: x for i, x in enumerate(leaves) if not dynamic(x)}
    return static, [x for i, x in enumerate(leaves) if i not in static]


def join_leaves(treedef: TreeDef, static: dict[int, Any], dynamic) -> Any:
    """The inverse of split_leaves: the tree whose leaves are `static` at their positions and
    `dynamic`, in order, everywhere else."""
    it = iter(dynamic)
    return tree_unflatten(treedef, [static[i] if i in static else next(it) for i in range(treedef.num_leaves)])
