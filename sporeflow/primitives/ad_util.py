"""Factories for the autodiff rules of op families (used inside the def_op blocks).

Rules follow the signatures documented in `OpDef`; everything is written with `lax` ops, so
the graphs they emit can be differentiated again. Forward-mode rules are written directly (not
derived by transposing the VJP): both are short for every primitive, and a direct JVP keeps
forward-mode graphs free of transposes.
"""
from __future__ import annotations

from typing import Callable

from .common import lax
from ..core.trace import current_trace


def scalar(like, value):
    """A rank-0 constant of `like`'s dtype (broadcasts in binary ops)."""
    return lax.full((), value, like.dtype)


def bcast(t, shape):
    shape = tuple(shape)
    return t if tuple(t.shape) == shape else lax.broadcast_to(t, shape=shape)


def zeros_if_none(t, like):
    return lax.zeros_like(like) if t is None else t


def primal(name: str, primals, attrs) -> list:
    """The op itself, recorded under the forward node's own scope (not `jvp/...`)."""
    tr = current_trace()
    if tr is None:
        return lax.multi(name, *primals, **attrs)
    saved = tr.scope_prefix
    tr.scope_prefix = ""
    try:
        return lax.multi(name, *primals, **attrs)
    finally:
        tr.scope_prefix = saved


def unary_rules(name: str, lin: Callable) -> dict:
    """y = f(x) elementwise; `lin(x, y)` returns g -> f'(x) * g (its own adjoint)."""

    def vjp(ins, outs, douts, **attrs):
        return [lin(ins[0], outs[0])(douts[0])]

    def jvp(primals, tangents, **attrs):
        y = primal(name, primals, attrs)
        t = tangents[0]
        return y, [None if t is None else lin(primals[0], y[0])(t)]
    return {"vjp": vjp, "jvp": jvp}


def binary_rules(name: str, partials: Callable) -> dict:
    """z = f(x, y) with broadcasting; `partials(x, y, z)` -> (gx, gy): linear maps g -> dz/dx * g
    (resp. y), applied to a g of z's shape."""

    def vjp(ins, outs, douts, **attrs):
        x, y = ins
        fx, fy = partials(x, y, outs[0])
        g = douts[0]
        return [lax.sum_to_shape(fx(g), x.shape), lax.sum_to_shape(fy(g), y.shape)]

    def jvp(primals, tangents, **attrs):
        z = primal(name, primals, attrs)
        x, y = primals
        fx, fy = partials(x, y, z[0])
        parts = [f(t) for f, t in ((fx, tangents[0]), (fy, tangents[1])) if t is not None]
        if not parts:
            return z, [None]
        t = parts[0] if len(parts) == 1 else lax.add(bcast(parts[0], z[0].shape), bcast(parts[1], z[0].shape))
        return z, [bcast(t, z[0].shape)]
    return {"vjp": vjp, "jvp": jvp}


def linear_jvp(name: str, linear_args: tuple[int, ...] = (0,), **tangent_attrs) -> Callable:
    """JVP of an op linear in `linear_args` (others held fixed): apply the op to the tangents.
    `tangent_attrs` override attributes for the tangent (pad's fill value becomes 0)."""

    def jvp(primals, tangents, **attrs):
        out = primal(name, primals, attrs)
        if all(tangents[i] is None for i in linear_args):
            return out, [None] * len(out)
        args = [zeros_if_none(tangents[i], primals[i]) if i in linear_args else p for i, p in enumerate(primals)]
        return out, lax.multi(name, *args, **dict(attrs, **tangent_attrs))
    return jvp


def bilinear_jvp(name: str) -> Callable:
    """JVP of an op bilinear in its two inputs (matmul, conv2d): f(tx, y) + f(x, ty)."""

    def jvp(primals, tangents, **attrs):
        x, y = primals
        out = primal(name, primals, attrs)
        tx, ty = tangents
        parts = []
        if tx is not None:
            parts.append(lax.multi(name, tx, y, **attrs)[0])
        if ty is not None:
            parts.append(lax.multi(name, x, ty, **attrs)[0])
        if not parts:
            return out, [None]
        return out, [parts[0] if len(parts) == 1 else lax.add(parts[0], parts[1])]
    return jvp
