"""The CUDA backend's lowering table: one entry per primitive, `rule(pb, node)` (pb: the
ProgramBuilder of the graph being lowered; rules add kernels to its module and steps to its
program). Which implementation each entry takes:

  elementwise/broadcast ops   the scalar table (scalar.py) through a one-member fused body:
                              one grid-stride kernel (fused.py)
  reduce_sum/max/min          row kernel (trailing axes, block reduction) or column kernel
                              (leading axes) when the plan allows, else one thread per output
  data movement, take, iota,  one thread per output element (kernels_index.py)
  pools, random, arg-reduce
  scatter_add                 accumulate with atomicAdd (float32 for half types)
  matmul, conv2d              the device GEMM (gemm.py)
  fused                       its planned kernel, or member by member
  cond/while_loop/scan        host control flow around subprograms; custom_vjp inlines fwd
"""
from __future__ import annotations

import numpy as np

from ...ir.dtypes import float32, int32
from ...ir.graph import Graph, Node, Value
from ...passes.loop_nest import LoopNest, loop_nest
from . import collective, host_print
from . import ctypes_c as C
from . import kernels_index as K
from .fused import MASTERS, lower_body_kernel
from .gemm import conv2d_into, matmul_into
from .kernels_index import strides_of
from .module import ELEMENTWISE_BLOCK, Kernel, coords, grid_for, grid_stride, linear
from .scalar import SCALAR


def _one_node_body(node: Node) -> Graph:
    xs = [Value(v.type, f"in{k}") for k, v in enumerate(node.inputs)]
    member = Node(node.op, xs, node.attrs, [v.type for v in node.outputs], node.loc, node.scope)
    return Graph(node.op, xs, [member], member.outputs)


def _ins(pb, node) -> list[int]:
    return [pb.slot(v) for v in node.inputs]


def lower_elementwise(pb, node) -> None:
    body = _one_node_body(node)
    if not lower_body_kernel(pb, node.op, body, _ins(pb, node), node.outputs, loop_nest(body)):
        raise AssertionError(f"cuda: an elementwise {node.op} without a plan")   # every shape has one


def lower_reduce(pb, node) -> None:
    body = _one_node_body(node)      # a reduction outside any fused group: its own one-node nest
    if node.inputs[0].type.size and node.outputs[0].type.size and \
            lower_body_kernel(pb, node.op, body, _ins(pb, node), node.outputs, loop_nest(body)):
        return
    _map(K.k_reduce)(pb, node)


def _map(make):
    """A rule launching `make(name, node)` on the node's inputs -> its one output."""
    def rule(pb, node) -> None:
        y = node.outputs[0]
        if y.type.size == 0:
            pb.host(lambda dev, env, s=pb.slot(y), t=y.type: env.__setitem__(s, dev.empty(t.shape, t.dtype.storage)),
                    [], [pb.slot(y)], "empty")
            return
        pb.launch(make(pb.module.unique(node.op), node), _ins(pb, node), [pb.alloc_for(y)])
    return rule


def lower_constant(pb, node) -> None:
    pb.prog.consts[pb.slot(node.outputs[0])] = np.array(node.attrs["value"].array, copy=True, order="C")


def _acc_dtype(dt):
    """scatter_add accumulates half types in float32 and narrow integers in int32 (atomicAdd
    exists for 32/64-bit types)."""
    if dt.is_half:
        return float32
    return int32 if dt.name in ("int8", "int16", "uint8", "uint16", "bool") else dt


def lower_scatter_add(pb, node) -> None:
    x, idx, upd = node.inputs
    y, ax = node.outputs[0], node.attrs["axis"]
    dt, adt = y.dtype, _acc_dtype(y.dtype)
    xs, us = _ins(pb, node)[0], _ins(pb, node)[2]
    acc = pb.slot(y) if adt is dt else pb.new_slot()
    n = x.type.size
    init = grid_stride(n) + f"    out0[i] = ({C.storage(adt)})({C.load(dt, 'in0[i]')});\n  }}\n"
    pb.launch(Kernel(pb.module.unique("scatter_init"), [(C.storage(dt), "in0", False), (C.storage(adt), "out0", True)],
                     init, grid_for(n), ELEMENTWISE_BLOCK), [xs], [(acc, y.type.shape, adt.storage)])
    if upd.type.size:
        ir, nax = len(idx.type.shape), x.type.shape[ax]
        uc = [f"u{k}" for k in range(len(upd.type.shape))]
        xc = uc[:ax] + ["t"] + uc[ax + ir:]
        target = {"int64": "(unsigned long long*)", "uint32": "", "uint64": ""}.get(adt.name, "")
        val = f"(unsigned long long)({C.load(dt, 'in2[i]')})" if adt.name == "int64" else \
            f"({C.compute(adt)})({C.load(dt, 'in2[i]')})"
        src = (grid_stride(upd.type.size) + coords("u", "i", upd.type.shape)
               + f"    long long t = (long long)in1[{linear(uc[ax:ax + ir], strides_of(idx.type.shape))}];\n"
               + f"    t = t < 0 ? 0 : (t > {nax - 1}LL ? {nax - 1}LL : t);\n"
               + f"    atomicAdd({target}&out0[{linear(xc, strides_of(x.type.shape))}], {val});\n  }}\n")
        params = [(C.storage(idx.dtype), "in1", False), (C.storage(dt), "in2", False), (C.storage(adt), "out0", True)]
        k = Kernel(pb.module.unique("scatter_add"), params, src, grid_for(upd.type.size), ELEMENTWISE_BLOCK)
        pb.module.add(k)
        isl = pb.slot(idx)
        pb.host(lambda dev, env: dev.launch(k.name, k.grid, k.block, [env[isl], env[us], env[acc]]),
                [isl, us, acc], [acc], k.name)
    if adt is not dt:
        src = grid_stride(n) + f"    out0[i] = {C.store(dt, f'({C.compute(dt)})in0[i]')};\n  }}\n"
        pb.launch(Kernel(pb.module.unique("scatter_out"), [(C.storage(adt), "in0", False), (C.storage(dt), "out0", True)],
                         src, grid_for(n), ELEMENTWISE_BLOCK), [acc], [pb.alloc_for(y)])


def lower_matmul(pb, node) -> None:
    matmul_into(pb, node, _ins(pb, node), pb.alloc_for(node.outputs[0]))


def lower_conv2d(pb, node) -> None:
    conv2d_into(pb, node, _ins(pb, node), pb.alloc_for(node.outputs[0]))


MASTERS.update({"matmul": lambda pb, n, ins, out: matmul_into(pb, n, ins, out),
                "conv2d": lambda pb, n, ins, out: conv2d_into(pb, n, ins, out)})


# ---- fused / custom_vjp: bodies -------------------------------------------------------------
def _inline_body(pb, body: Graph, in_slots: list, outs) -> None:
    for v, s in zip(body.inputs, in_slots):
        pb.alias(v, s)
    pb.lower_nodes(body.nodes)
    for v, o in zip(body.outputs, outs):
        pb.alias(o, pb.slot(v))


def lower_fused(pb, node) -> None:
    body = node.attrs["body"]
    if not body.outputs:
        return
    if not lower_body_kernel(pb, node.attrs["name"], body, _ins(pb, node), node.outputs, LoopNest.of(node.attrs)):
        _inline_body(pb, body, _ins(pb, node), node.outputs)


def lower_custom_vjp(pb, node) -> None:
    _inline_body(pb, node.attrs["fwd"], _ins(pb, node), node.outputs)


# ---- structured control flow on the host ----------------------------------------------------
def _fresh(dev, arrays, inputs):
    """Results that are one of the node's input arrays are copied (outputs own their buffers)."""
    ids = {id(a) for a in inputs}
    return [dev.copy(a) if id(a) in ids else a for a in arrays]


def lower_cond(pb, node) -> None:
    then, els = pb.subprogram(node.attrs["then_branch"]), pb.subprogram(node.attrs["else_branch"])
    ins, outs = _ins(pb, node), [pb.slot(v) for v in node.outputs]

    def run(dev, env):
        args = [env[s] for s in ins[1:]]
        res = (then if dev.read_bool(env[ins[0]]) else els).run(dev, args)
        for s, a in zip(outs, _fresh(dev, res, args)):
            env[s] = a
    pb.host(run, ins, outs, "cond")


def lower_while(pb, node) -> None:
    cond, body = pb.subprogram(node.attrs["cond_graph"]), pb.subprogram(node.attrs["body_graph"])
    ins, outs = _ins(pb, node), [pb.slot(v) for v in node.outputs]

    def run(dev, env):
        init = [env[s] for s in ins]
        carry = init
        while dev.read_bool(cond.run(dev, carry)[0]):
            carry = body.run(dev, carry)
        for s, a in zip(outs, _fresh(dev, carry, init)):
            env[s] = a
    pb.host(run, ins, outs, "while_loop")


def lower_scan(pb, node) -> None:
    body = pb.subprogram(node.attrs["body"])
    nc, length, reverse = node.attrs["num_carry"], node.attrs["length"], node.attrs["reverse"]
    ins, outs = _ins(pb, node), [pb.slot(v) for v in node.outputs]
    ys_types = [v.type for v in node.outputs[nc:]]

    def run(dev, env):
        init = [env[s] for s in ins[:nc]]
        carry, xs = init, [env[s] for s in ins[nc:]]
        ys = [dev.empty(t.shape, t.dtype.storage) for t in ys_types]
        for i in range(length):
            t = length - 1 - i if reverse else i
            res = body.run(dev, list(carry) + [x[t, ...] for x in xs])   # a 0-d view, not a scalar, for 1-D xs
            carry = res[:nc]
            for y, r in zip(ys, res[nc:]):
                dev.assign(y, t, r)
        for s, a in zip(outs, _fresh(dev, carry, init) + ys):
            env[s] = a
    pb.host(run, ins, outs, "scan")


LOWERINGS: dict = {
    **{op: lower_elementwise for op in SCALAR},
    "reduce_sum": lower_reduce, "reduce_max": lower_reduce, "reduce_min": lower_reduce,
    "argmax": _map(K.k_argminmax), "argmin": _map(K.k_argminmax),
    "reshape": _map(K.k_reshape), "broadcast_to": _map(K.k_broadcast), "transpose": _map(K.k_transpose),
    "slice": _map(K.k_slice), "rev": _map(K.k_rev), "pad": _map(K.k_pad), "concatenate": _map(K.k_concatenate),
    "iota": _map(K.k_iota), "take": _map(K.k_take), "constant": lower_constant,
    "max_pool2d": _map(K.k_pool), "avg_pool2d": _map(K.k_pool), "max_pool2d_grad": _map(K.k_max_pool_grad),
    "random_bits": _map(K.k_random), "random_uniform": _map(K.k_random),
    "scatter_add": lower_scatter_add, "matmul": lower_matmul, "conv2d": lower_conv2d,
    "fused": lower_fused, "custom_vjp": lower_custom_vjp,
    "cond": lower_cond, "while_loop": lower_while, "scan": lower_scan,
    **collective.RULES,
    **host_print.RULES,
}
