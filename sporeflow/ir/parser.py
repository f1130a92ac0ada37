"""Parser for the printer's text. Errors carry line and column; nothing malformed crashes.

The parser checks syntax and name resolution (a use before definition is a parse error);
whether the types are right is the verifier's job (`verify`), so hand-edited IR with a wrong
type parses and is then rejected by `verify` with a message naming the node.
"""
from __future__ import annotations

import json
import re
from typing import Iterator

import numpy as np

from ..errors import IRParseError
from .dtypes import BY_SHORT, f32_to_bf16_bits, bfloat16
from .graph import Graph, Node, Value
from .types import Attrs, ConstValue, TensorType
from .registry import REGISTRY

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#.*)
  | (?P<arrow>->)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<dense>dense<)
  | (?P<value>%[A-Za-z0-9_.]+)
  | (?P<graph>@[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<number>[-+]?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\.\d+(?:[eE][-+]?\d+)?|\d+|inf)(?![A-Za-z0-9_]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[(){}\[\],:=<>])
""", re.VERBOSE)


class _Line:
    """Tokens of one source line with their columns."""

    def __init__(self, text: str, lineno: int):
        self.text, self.lineno, self.toks, self.pos, self.comment = text, lineno, [], 0, None
        i = 0
        while i < len(text):
            m = _TOKEN.match(text, i)
            if not m:
                raise IRParseError(f"unexpected character {text[i]!r}", lineno, i + 1, text)
            kind = m.lastgroup
            if kind == "comment":
                self.comment = m.group()
                break
            if kind != "ws":
                self.toks.append((kind, m.group(), i + 1))
            i = m.end()

    def err(self, msg: str, col: int | None = None) -> IRParseError:
        if col is None:
            col = self.toks[self.pos][2] if self.pos < len(self.toks) else len(self.text) + 1
        return IRParseError(msg, self.lineno, col, self.text)

    def peek(self):
        return self.toks[self.pos] if self.pos < len(self.toks) else (None, None, len(self.text) + 1)

    def next(self, kind: str | None = None, text: str | None = None):
        tok = self.peek()
        if tok[0] is None:
            raise self.err(f"unexpected end of line, expected {text or kind}")
        if (kind and tok[0] != kind) or (text and tok[1] != text):
            raise self.err(f"expected {text or kind}, found {tok[1]!r}")
        self.pos += 1
        return tok

    def accept(self, text: str) -> bool:
        if self.peek()[1] == text:
            self.pos += 1
            return True
        return False

    def done(self) -> bool:
        return self.pos >= len(self.toks)

    def items(self, close: str) -> Iterator[None]:
        """A comma-separated list ending at `close` (consumed): yields once before each item,
        which the loop body then reads."""
        first = True
        while not self.accept(close):
            if not first:
                self.next(text=",")
            first = False
            yield

    def use(self, env: dict[str, Value]) -> Value:
        """A %value operand, which must already be defined."""
        _, a, col = self.next("value")
        if a[1:] not in env:
            raise self.err(f"{a} used before it is defined", col)
        return env[a[1:]]


def _parse_type(ln: _Line) -> TensorType:
    _, name, col = ln.next("ident")
    if name not in BY_SHORT:
        raise ln.err(f"unknown dtype {name!r}", col)
    ln.next(text="[")
    dims = []
    for _ in ln.items("]"):
        _, d, c = ln.next("number")
        if not d.isdigit():
            raise ln.err(f"dimension must be a non-negative integer, got {d}", c)
        dims.append(int(d))
    return TensorType(tuple(dims), BY_SHORT[name])


def _number(text: str):
    if text.lstrip("+-").isdigit():
        return int(text)
    return float(text)


def _parse_const(ln: _Line) -> ConstValue:
    col = ln.peek()[2]
    t = _parse_type(ln)
    ln.next(text=">")
    ln.next(text="[")
    vals = []
    for _ in ln.items("]"):
        kind, text, col = ln.next()
        if kind == "number":
            vals.append(_number(text))
        elif kind == "ident" and text in ("nan", "true", "false"):
            vals.append({"nan": float("nan"), "true": True, "false": False}[text])
        else:
            raise ln.err(f"bad constant element {text!r}", col)
    if len(vals) != t.size:
        raise ln.err(f"constant of type {t} needs {t.size} elements, has {len(vals)}")
    try:
        arr = np.array(vals, dtype=np.float64 if t.dtype.is_float else np.int64 if t.dtype.is_int else None)
        arr = arr.reshape(t.shape)
    except (OverflowError, ValueError, TypeError):
        raise ln.err(f"constant values do not fit {t}", col) from None
    if t.dtype is bfloat16:
        return ConstValue(f32_to_bf16_bits(arr.astype(np.float32)), t.dtype)
    return ConstValue(arr.astype(t.dtype.storage), t.dtype)


def _parse_attr(ln: _Line, graphs: dict[str, Graph]):
    kind, text, col = ln.next()
    if kind == "number":
        return _number(text)
    if kind == "string":
        try:
            return json.loads(text)
        except ValueError as e:
            raise ln.err(f"bad string literal ({e.msg})", col) from None
    if kind == "graph":
        if text[1:] not in graphs:
            raise ln.err(f"unknown graph {text} (subgraphs must be defined before use)", col)
        return graphs[text[1:]]
    if kind == "dense":
        return _parse_const(ln)
    if kind == "ident":
        if text in ("true", "false"):
            return text == "true"
        if text == "none":
            return None
        if text == "nan":
            return float("nan")
        if text in BY_SHORT:
            return BY_SHORT[text]
        raise ln.err(f"unknown attribute value {text!r}", col)
    if text == "(":
        items = []
        while not ln.accept(")"):
            items.append(_parse_attr(ln, graphs))
            if not ln.accept(","):
                ln.next(text=")")
                break
        return tuple(items)
    raise ln.err(f"unexpected {text!r} in attribute value", col)


def _parse_comment(comment: str | None) -> tuple[str, str]:
    if not comment:
        return "", ""
    body = comment[2:] if comment.startswith("# ") else comment[1:]
    scope, _, loc = body.partition("  ")
    return scope.strip(), loc.strip()


def _parse_header(ln: _Line, graphs: dict[str, Graph]):
    ln.next(text="graph")
    _, gname, col = ln.next("graph")
    gname = gname[1:]
    if gname in graphs:
        raise ln.err(f"graph @{gname} defined twice", col)
    ln.next(text="(")
    env: dict[str, Value] = {}
    inputs = []
    for _ in ln.items(")"):
        _, vname, vcol = ln.next("value")
        if vname[1:] in env:
            raise ln.err(f"{vname} defined twice", vcol)
        ln.next(text=":")
        v = Value(_parse_type(ln), vname[1:])
        env[vname[1:]] = v
        inputs.append(v)
    ln.next("arrow")
    ln.next(text="(")
    out_types = []
    for _ in ln.items(")"):
        out_types.append(_parse_type(ln))
    ln.next(text="{")
    return gname, env, inputs, out_types


def _parse_node(ln: _Line, env: dict[str, Value], graphs: dict[str, Graph]) -> Node:
    results = []
    while True:
        _, vname, vcol = ln.next("value")
        ln.next(text=":")
        results.append((vname[1:], vcol, _parse_type(ln)))
        if not ln.accept(","):
            break
    ln.next(text="=")
    _, op, opcol = ln.next("ident")
    if op not in REGISTRY:
        raise ln.err(f"unknown op {op!r}", opcol)
    ln.next(text="(")
    args = []
    for _ in ln.items(")"):
        args.append(ln.use(env))
    attrs = {}
    if ln.accept("{"):
        for _ in ln.items("}"):
            _, key, kcol = ln.next("ident")
            if key in attrs:
                raise ln.err(f"attribute {key} given twice", kcol)
            ln.next(text="=")
            attrs[key] = _parse_attr(ln, graphs)
    if not ln.done():
        raise ln.err(f"unexpected {ln.peek()[1]!r} after statement")
    scope, loc = _parse_comment(ln.comment)
    node = Node(op, args, Attrs(attrs), [t for _, _, t in results], loc=loc, scope=scope)
    for (name, col, _), v in zip(results, node.outputs):
        if name in env:
            raise ln.err(f"%{name} defined twice", col)
        v.name = name
        env[name] = v
    return node


def parse_module(text: str) -> dict[str, Graph]:
    """All graphs of the text, by name, in order of definition."""
    graphs: dict[str, Graph] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        ln = _Line(lines[i], i + 1)
        i += 1
        if ln.done():
            continue
        gname, env, inputs, out_types = _parse_header(ln, graphs)
        if not ln.done():
            raise ln.err("unexpected text after '{'")
        nodes, outputs, closed = [], None, False
        while i < len(lines):
            ln = _Line(lines[i], i + 1)
            i += 1
            if ln.done():
                continue
            if ln.peek()[1] == "}":
                ln.next()
                closed = True
                break
            if outputs is not None:
                raise ln.err("statement after return")
            if ln.peek()[1] == "return":
                ln.next()
                outputs = []
                while not ln.done():
                    if outputs:
                        ln.next(text=",")
                    outputs.append(ln.use(env))
                continue
            nodes.append(_parse_node(ln, env, graphs))
        if not closed:
            raise IRParseError(f"graph @{gname} is not closed with '}}'", len(lines), 1)
        if outputs is None:
            raise IRParseError(f"graph @{gname} has no return", i, 1)
        if [v.type for v in outputs] != out_types:
            raise IRParseError(f"graph @{gname} returns ({', '.join(str(v.type) for v in outputs)}) but its "
                               f"header says ({', '.join(map(str, out_types))})", i, 1)
        graphs[gname] = Graph(gname, inputs, nodes, outputs)
    if not graphs:
        raise IRParseError("no graph in text", 1, 1)
    return graphs


def parse(text: str) -> Graph:
    """The last graph of the text (the entry; subgraphs come first)."""
    return list(parse_module(text).values())[-1]
