"""The autodiff API with MindSpore 2.x signatures: grad, value_and_grad, jvp, vjp, jacfwd, jacrev.

Each transform traces the user function into a fresh Trace (Parameters it reads become
captured inputs, tracers of an enclosing trace too), applies a pass (`passes.autodiff` /
`passes.forward`) and `inline`s the result: eagerly that runs the graph with the
interpreter, under `sf.jit` or another transform it records into the enclosing trace, which
is why transforms compose (grad(grad(f)), jacfwd(jacrev(f)), vmap(grad(f))).

Unlike MindSpore, tuple/list/dict arguments are differentiable: their gradient has the same
structure (non-tensor leaves get None).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import SporeflowError
from ..ir import dtypes as D
from ..ir.graph import Graph
from ..core import lax
from .autograph import convert
from .jit import save_graph
from .pytree import TreeDef, join_leaves, split_leaves, tree_flatten, tree_unflatten
from .tensor import Parameter, Tensor
from ..core.trace import Trace, current_trace, inline
from ..passes.autodiff import vjp_graph
from ..passes.dce import dce
from ..passes.forward import jvp_graph


@dataclass
class _Traced:
    graph: Graph
    leaves: list            # tensor leaves of the arguments (graph inputs, in order)
    captured: list          # implicit inputs after the explicit ones
    updated: list           # Parameters assigned inside fn (their new values follow the outputs)
    arg_slots: list         # per positional argument: (treedef, [leaf index or None per leaf])
    out_td: TreeDef
    out_static: dict        # out-leaf position -> non-tensor value
    n_out: int              # tensor outputs of fn


def _as_tensor(x):
    return Tensor(x) if isinstance(x, np.ndarray) else x


def _trace(fn: Callable, args: Sequence, name: str) -> _Traced:
    """Trace fn(*args): every Tensor leaf of every argument becomes a graph input."""
    leaves, slots = [], []
    for a in args:
        la, td = tree_flatten(a)
        idx = []
        for x in la:
            x = _as_tensor(x)
            if isinstance(x, Tensor):
                idx.append(len(leaves))
                leaves.append(x)
            else:
                idx.append(None)
        slots.append((td, idx, la))
    with Trace(name) as tr:
        tracers = [tr.new_input(x._type, f"arg{i}") for i, x in enumerate(leaves)]
        call_args = [tree_unflatten(td, [tracers[i] if i is not None else x for i, x in zip(idx, la)])
                     for td, idx, la in slots]
        out = convert(fn)(*call_args)
        out_leaves, out_td = tree_flatten(out)
        out_static, tensors = split_leaves(out_leaves, lambda x: isinstance(x, Tensor))
        graph, captured, updated = tr.finish(tensors)
    return _Traced(graph, leaves, captured, updated, [(td, idx) for td, idx, _ in slots], out_td, out_static,
                   len(tensors))


def _run(t: _Traced, graph: Graph, extra: Sequence) -> list:
    """Inline `graph` (which takes t's inputs + extra) and apply parameter updates."""
    outs = inline(graph, list(t.leaves) + list(t.captured) + list(extra))
    return outs


def _apply_updates(t: _Traced, new_values: Sequence) -> None:
    tr = current_trace()
    for p, v in zip(t.updated, new_values):
        if tr is not None:
            tr.record_update(p, v)
        else:
            p._assign_storage(v._data)


def _rebuild_outputs(t: _Traced, tensors: Sequence):
    return join_leaves(t.out_td, t.out_static, tensors)


def _positions(grad_position) -> tuple[int, ...]:
    if grad_position is None:
        return ()
    if isinstance(grad_position, int):
        return (grad_position,)
    return tuple(int(p) for p in grad_position)


def _weights_list(weights) -> list:
    if weights is None:
        return []
    if isinstance(weights, Parameter):
        return [weights]
    ws = list(weights)
    for w in ws:
        if not isinstance(w, Parameter):
            raise TypeError(f"grad: weights must be Parameters (net.trainable_params()), got {type(w).__name__}")
    return ws


def _arg_grads(t: _Traced, pos: int, grads: dict[int, Any]):
    """The gradient of positional argument `pos` in the argument's own structure."""
    td, idx = t.arg_slots[pos]
    return tree_unflatten(td, [grads.get(i) if i is not None else None for i in idx])


def _diff_mask_leaves(t: _Traced, positions: tuple[int, ...], fname: str) -> set[int]:
    n = len(t.arg_slots)
    sel = set()
    for p in positions:
        if not -n <= p < n:
            raise SporeflowError(f"{fname}: grad_position {p} out of range for {n} argument(s)")
        td, idx = t.arg_slots[p % n]
        sel.update(i for i in idx if i is not None)
    return sel


def _floats_to_tensors(args: tuple, positions: tuple[int, ...]) -> tuple:
    """Python floats at differentiated positions become float32 tensors (grad(sin)(0.5) works)."""
    n = len(args)
    pos = {p % n for p in positions if -n <= p < n}
    conv = lambda x: Tensor(x) if isinstance(x, float) else x  # noqa: E731
    return tuple(tree_unflatten(tree_flatten(a)[1], [conv(x) for x in tree_flatten(a)[0]]) if i in pos else a
                 for i, a in enumerate(args))


def _grad_core(fn, args, grad_position, weights, has_aux, return_ids, sens, fname, want_value=True):
    positions = _positions(grad_position)
    ws = _weights_list(weights)
    if not positions and not ws:
        raise SporeflowError(f"{fname}: grad_position is None and no weights given: nothing to differentiate")
    t = _trace(fn, _floats_to_tensors(args, positions), getattr(fn, "__name__", "fn"))
    sel = _diff_mask_leaves(t, positions, fname)
    positions = tuple(p % len(t.arg_slots) for p in positions)
    n_exp = len(t.leaves)
    cap_index = {id(c): n_exp + k for k, c in enumerate(t.captured)}
    w_index = [cap_index.get(id(w)) for w in ws]
    g_in = t.graph.inputs
    wrt = [False] * len(g_in)
    for i in sel:
        wrt[i] = g_in[i].type.dtype.is_float
    for i in w_index:
        if i is not None:
            wrt[i] = g_in[i].type.dtype.is_float
    # which outputs are differentiated: all of fn's outputs, or output 0 with has_aux
    n_primary = t.n_out
    if has_aux:
        if t.out_td.kind not in ("tuple", "list") or len(t.out_td.children) < 1:
            raise SporeflowError(f"{fname}: has_aux=True needs fn to return a tuple (output, aux...)")
        n_primary = t.out_td.children[0].num_leaves - sum(
            1 for i in t.out_static if i < t.out_td.children[0].num_leaves)
    save_graph(t.graph, "forward")
    vg = vjp_graph(t.graph, wrt)
    save_graph(vg, "grad")
    outs_types = t.graph.outputs
    cts = []
    sens_leaves = tree_flatten(sens)[0] if sens is not None else None
    k = 0
    for j, v in enumerate(outs_types):
        if not v.type.dtype.is_float:
            continue
        if j < n_primary:
            if sens_leaves is not None:
                s = sens_leaves[k] if k < len(sens_leaves) else None
                k += 1
                s = s if isinstance(s, Tensor) else Tensor(np.asarray(s), v.type.dtype)
                cts.append(lax.convert(s, v.type.dtype))
            else:
                cts.append(lax.full(v.type.shape, 1, v.type.dtype))   # sens of ones: outputs summed
        else:
            cts.append(lax.full(v.type.shape, 0, v.type.dtype))
    n_all = len(outs_types)
    # fn's own outputs are only computed when asked for (value_and_grad, has_aux)
    keep = list(range(n_all)) if want_value or has_aux else list(range(t.n_out, n_all))
    vg = dce(Graph(vg.name, vg.inputs, vg.nodes, [vg.outputs[i] for i in keep] + vg.outputs[n_all:]))
    res = _run(t, vg, cts)
    outs: list = [None] * n_all
    for i, r in zip(keep, res):
        outs[i] = r
    grads = res[len(keep):]
    _apply_updates(t, outs[t.n_out:])
    by_input: dict[int, Any] = {}
    it = iter(grads)
    for i, w in enumerate(wrt):
        if w:
            by_input[i] = next(it)
    leaf_grads = {}
    for i in sel:
        leaf_grads[i] = by_input.get(i) if i in by_input else lax.zeros_like(t.leaves[i])
    in_part = [_arg_grads(t, p, leaf_grads) for p in positions]
    w_part = [by_input[i] if i is not None and i in by_input else lax.zeros_like(w) for w, i in zip(ws, w_index)]
    if return_ids:
        in_part = [(p, g) for p, g in zip(positions, in_part)]
        w_part = [(w.name, g) for w, g in zip(ws, w_part)]
    gin = in_part[0] if isinstance(grad_position, int) else tuple(in_part)
    gw = w_part[0] if isinstance(weights, Parameter) else tuple(w_part)
    if positions and ws:
        result = (gin, gw)
    elif ws:
        result = gw
    else:
        result = gin
    value = _rebuild_outputs(t, outs[:t.n_out]) if want_value or has_aux else None
    return value, result


def _split_sens(args, sens_param):
    if not sens_param:
        return args, None
    if not args:
        raise SporeflowError("sens_param=True: pass the sensitivity as the last argument")
    return args[:-1], args[-1]


def _aux_of(value):
    return tuple(value[1:])


def grad(fn: Callable, grad_position=0, weights=None, has_aux: bool = False, return_ids: bool = False,
         sens_param: bool = False) -> Callable:
    """Gradients of fn (every output seeded with ones, i.e. their sum) w.r.t. the arguments at
    grad_position (int, tuple or None) and/or `weights` (Parameters). Returns the input grads,
    the weight grads, or (input grads, weight grads) when both are asked for; (grads, aux) with
    has_aux (only output 0 is differentiated)."""
    @functools.wraps(fn) if hasattr(fn, "__name__") else (lambda f: f)
    def grad_fn(*args):
        args, sens = _split_sens(args, sens_param)
        value, g = _grad_core(fn, args, grad_position, weights, has_aux, return_ids, sens, "grad", want_value=False)
        return (g, _aux_of(value)) if has_aux else g
    return grad_fn


def value_and_grad(fn: Callable, grad_position=0, weights=None, has_aux: bool = False, return_ids: bool = False,
                   sens_param: bool = False) -> Callable:
    """(fn's outputs, grads) with the same arguments as `grad`."""
    def vg_fn(*args):
        args, sens = _split_sens(args, sens_param)
        return _grad_core(fn, args, grad_position, weights, has_aux, return_ids, sens, "value_and_grad")
    return vg_fn


def get_grad(gradients, identifier):
    """Pick one gradient out of a return_ids=True result by position (int) or Parameter name."""
    key = identifier.name if isinstance(identifier, Parameter) else identifier
    stack = [gradients]
    while stack:
        g = stack.pop()
        if isinstance(g, tuple) and len(g) == 2 and isinstance(g[0], (int, str)) and g[0] == key:
            return g[1]
        if isinstance(g, (tuple, list)):
            stack.extend(reversed(g))
    raise ValueError(f"get_grad: no gradient with identifier {key!r}")


class GradOperation:
    """MindSpore's legacy `ops.GradOperation(get_all, get_by_list, sens_param)`:
    `GradOperation(...)(fn[, weights])` returns the gradient function. get_all: a tuple of every
    input's grad (else the first input's grad only); get_by_list: grads of `weights` (both:
    (input grads, weight grads)); sens_param: the last argument is the output sensitivity."""

    def __init__(self, get_all: bool = False, get_by_list: bool = False, sens_param: bool = False):
        self.get_all, self.get_by_list, self.sens_param = get_all, get_by_list, sens_param

    def __call__(self, fn: Callable, weights=None) -> Callable:
        if self.get_by_list and weights is None:
            raise SporeflowError("GradOperation(get_by_list=True) needs weights: grad_op(fn, weights)")

        def grad_fn(*args):
            args, sens = _split_sens(args, self.sens_param)
            if self.get_all:
                pos = tuple(range(len(args)))
            else:
                pos = None if self.get_by_list else 0
            ws = list(_weights_list(weights)) if self.get_by_list else None
            _, g = _grad_core(fn, args, pos, ws, False, False, sens, "GradOperation", want_value=False)
            return g
        return grad_fn


# ---- forward mode and vjp ---------------------------------------------------------------------------
def _tuple_inputs(inputs) -> tuple[tuple, bool]:
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), True
    return (inputs,), False


def jvp(fn: Callable, inputs, v, has_aux: bool = False):
    """(fn(*inputs), J v): forward-mode derivative along `v` (same structure as `inputs`)."""
    args, multi = _tuple_inputs(inputs)
    vs, _ = _tuple_inputs(v)
    if len(vs) != len(args):
        raise SporeflowError(f"jvp: {len(args)} input(s) but {len(vs)} tangent(s)")
    t = _trace(fn, args, "jvp")
    n_exp = len(t.leaves)
    wrt = [i < n_exp and x.type.dtype.is_float for i, x in enumerate(t.graph.inputs)]
    tan_leaves = []
    for a, tv in zip(args, vs):
        tan_leaves += [_as_tensor(x) for x in tree_flatten(tv)[0] if isinstance(_as_tensor(x), Tensor)]
    if len(tan_leaves) != n_exp:
        raise SporeflowError("jvp: the tangents must have the structure of the inputs")
    tans = [lax.convert(tv, x.dtype) for tv, x, w in zip(tan_leaves, t.leaves, wrt) if w]
    for tv, x in zip(tan_leaves, t.leaves):
        if tuple(tv.shape) != tuple(x.shape):
            raise SporeflowError(f"jvp: tangent of shape {tuple(tv.shape)} for an input of shape {tuple(x.shape)}")
    jg = jvp_graph(t.graph, wrt)
    res = _run(t, jg, tans)
    n_all = len(t.graph.outputs)
    outs, touts = res[:n_all], res[n_all:]
    _apply_updates(t, outs[t.n_out:])
    it = iter(touts)
    tl = [next(it) if v_.type.dtype.is_float else lax.zeros_like(o)
          for v_, o in zip(t.graph.outputs[:t.n_out], outs[:t.n_out])]
    value, tangent = _rebuild_outputs(t, outs[:t.n_out]), _rebuild_outputs(t, tl)
    if has_aux:
        return value[0], tangent[0], _aux_of(value)
    return value, tangent


def vjp(fn: Callable, *inputs, weights=None, has_aux: bool = False):
    """(fn(*inputs), vjp_fn): vjp_fn(cotangent) -> tuple of input grads (then weight grads when
    weights are given); with has_aux: (output0, vjp_fn, aux)."""
    ws = _weights_list(weights)
    t = _trace(fn, inputs, "vjp")
    n_exp = len(t.leaves)
    cap_index = {id(c): n_exp + k for k, c in enumerate(t.captured)}
    w_index = [cap_index.get(id(w)) for w in ws]
    wrt = [i < n_exp and v.type.dtype.is_float for i, v in enumerate(t.graph.inputs)]
    for i in w_index:
        if i is not None:
            wrt[i] = True
    fwd = inline(t.graph, list(t.leaves) + list(t.captured))
    _apply_updates(t, fwd[t.n_out:])
    value = _rebuild_outputs(t, fwd[:t.n_out])
    n_primary = t.out_td.children[0].num_leaves if has_aux else t.n_out
    vg = vjp_graph(t.graph, wrt, keep_outputs=False)

    def vjp_fn(*cotangent):
        ct = cotangent[0] if len(cotangent) == 1 else cotangent
        ct_leaves = [_as_tensor(x) for x in tree_flatten(ct)[0]]
        cts, k = [], 0
        for j, v in enumerate(t.graph.outputs):
            if not v.type.dtype.is_float:
                continue
            if j < n_primary:
                if k >= len(ct_leaves):
                    raise SporeflowError("vjp_fn: the cotangent must have the structure of fn's output")
                cts.append(lax.convert(ct_leaves[k], v.type.dtype))
                k += 1
            else:
                cts.append(lax.full(v.type.shape, 0, v.type.dtype))
        grads = _run(t, vg, cts)
        by_input = dict(zip([i for i, w in enumerate(wrt) if w], grads))
        gin = tuple(_arg_grads(t, p, {i: by_input.get(i, None) if i in by_input else lax.zeros_like(t.leaves[i])
                                      for i in range(n_exp)}) for p in range(len(inputs)))
        if ws:
            gw = tuple(by_input[i] if i is not None else lax.zeros_like(w) for w, i in zip(ws, w_index))
            return gin, gw
        return gin
    if has_aux:
        return value[0], vjp_fn, _aux_of(value)
    return value, vjp_fn


# ---- Jacobians ----------------------------------------------------------------------------------------
def _basis(n: int, shape: tuple, dtype):
    """[n, *shape] with row i the i-th standard basis vector (built with primitives)."""
    rows = lax.iota(shape=(n, n), axis=0, dtype=D.int32)
    cols = lax.iota(shape=(n, n), axis=1, dtype=D.int32)
    eye = lax.convert(lax.eq(rows, cols), dtype)
    return lax.reshape(eye, shape=(n,) + tuple(shape))


def _scan_over(graph: Graph, fixed: list, basis_pos: int, basis):
    """Run `graph` once per basis row with a scan (fixed inputs ride as carries); returns the
    stacked outputs [n, ...]. One graph, whatever the Jacobian's size."""
    nfix = len(fixed)
    ins = graph.inputs
    order = [v for i, v in enumerate(ins) if i != basis_pos] + [ins[basis_pos]]
    body = Graph(graph.name + "_jac", order, graph.nodes, order[:nfix] + list(graph.outputs))
    outs = lax.multi("scan", *fixed, basis, body=body, num_carry=nfix, length=basis.shape[0], reverse=False)
    return outs[nfix:]


def _jac(fn, grad_position, has_aux, mode: str):
    positions = _positions(grad_position)
    if not positions:
        raise SporeflowError(f"jac{mode}: grad_position must be an int or a tuple of ints")

    def jac_fn(*args):
        args = _floats_to_tensors(args, positions)
        t = _trace(fn, args, f"jac{mode}")
        sel = sorted(_diff_mask_leaves(t, positions, f"jac{mode}"))
        inputs = list(t.leaves) + list(t.captured)
        n_primary = t.out_td.children[0].num_leaves if has_aux else t.n_out
        out_vals = t.graph.outputs[:n_primary]
        fwd = inline(t.graph, inputs)
        _apply_updates(t, fwd[t.n_out:])
        value = _rebuild_outputs(t, fwd[:t.n_out])
        # jac[o][i]: out_o.shape + in_i.shape
        jac: dict[tuple[int, int], Any] = {}
        if mode == "rev":
            for o, ov in enumerate(out_vals):
                if not ov.type.dtype.is_float:
                    continue
                wrt = [i in sel and v.type.dtype.is_float for i, v in enumerate(t.graph.inputs)]
                # a graph of (inputs, ct) -> grads with only output o seeded
                sub = Graph(t.graph.name, t.graph.inputs, t.graph.nodes, [ov])
                vg = vjp_graph(sub, wrt, keep_outputs=False)
                n = max(ov.type.size, 1)
                rows = _scan_over(vg, inputs, len(inputs), _basis(n, ov.type.shape, ov.type.dtype))
                for i, r in zip([i for i, w in enumerate(wrt) if w], rows):
                    jac[(o, i)] = lax.reshape(r, shape=ov.type.shape + t.leaves[i].shape)
        else:
            for i in sel:
                x = t.leaves[i]
                if not x.dtype.is_float:
                    continue
                wrt = [k == i for k in range(len(t.graph.inputs))]
                sub = Graph(t.graph.name, t.graph.inputs, t.graph.nodes, list(out_vals))
                jg = jvp_graph(sub, wrt)
                n = max(x.size, 1)
                cols = _scan_over(jg, inputs, len(inputs), _basis(n, x.shape, x.dtype))
                tcols = cols[len(out_vals):]
                float_outs = [o for o, ov in enumerate(out_vals) if ov.type.dtype.is_float]
                for o, c in zip(float_outs, tcols):
                    ov = out_vals[o]
                    r = ov.type.ndim
                    # c: [n, *out] -> [*out, n] -> [*out, *in]
                    c = lax.transpose(c, perm=tuple(range(1, r + 1)) + (0,))
                    jac[(o, i)] = lax.reshape(c, shape=ov.type.shape + x.shape)
        per_out = []
        for o, ov in enumerate(out_vals):
            grads = {i: jac.get((o, i)) if (o, i) in jac else
                     lax.full(ov.type.shape + t.leaves[i].shape, 0, t.leaves[i].dtype) for i in sel}
            parts = [_arg_grads(t, p % len(args), grads) for p in positions]
            per_out.append(parts[0] if isinstance(grad_position, int) else tuple(parts))
        td_primary = t.out_td.children[0] if has_aux else t.out_td
        statics = [i for i in t.out_static if i < td_primary.num_leaves]
        if statics:
            raise SporeflowError(f"jac{mode}: fn must return tensors only")
        result = tree_unflatten(td_primary, per_out)
        return (result, _aux_of(value)) if has_aux else result
    return jac_fn


def jacrev(fn: Callable, grad_position=0, has_aux: bool = False) -> Callable:
    """Jacobian by reverse mode: one VJP per output element, run as a scan over the basis."""
    return _jac(fn, grad_position, has_aux, "rev")


def jacfwd(fn: Callable, grad_position=0, has_aux: bool = False) -> Callable:
    """Jacobian by forward mode: one JVP per input element, run as a scan over the basis."""
    return _jac(fn, grad_position, has_aux, "fwd")
