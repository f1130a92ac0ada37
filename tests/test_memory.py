"""Memory planning: buffers are reused only between values whose lives do not overlap, in-place
writes happen only where declared safe, and a train step's parameters are written back into
their own buffers. Checked by running graphs through an arena that follows the plan."""
import gc
import weakref

import numpy as np
from hypothesis import given

import sporeflow as sf
from sporeflow import ops
from sporeflow.ir import run_graph
from sporeflow.passes.fusion import fuse
from sporeflow.passes.memory import INPUT, check_plan, plan_memory

from fusion_programs import programs

RNG = np.random.default_rng(1)


def run_with_plan(graph, plan, args):
    """Interpret `graph` storing every planned value in its planned buffer: if the plan shared
    a buffer between two live values, a later write would corrupt an earlier value."""
    arena = [np.zeros(n, np.uint8) for n in plan.buffer_bytes]
    inputs = [np.array(a, copy=True) for a in args]
    env = {id(v): a for v, a in zip(graph.inputs, inputs)}

    def home(v):
        b = plan.buffer_of.get(id(v))
        if b is None:
            return None
        if isinstance(b, tuple):
            return inputs[b[1]]
        dt = v.type.dtype.storage
        return arena[b][:v.type.size * dt.itemsize].view(dt).reshape(v.type.shape)

    for node in graph.nodes:
        ins = [env[id(v)] for v in node.inputs]
        outs = node.opdef.run(ins, node.attrs, [v.type for v in node.inputs], [v.type for v in node.outputs])
        for v, o in zip(node.outputs, outs):
            h = home(v)
            if h is None:
                env[id(v)] = o
            else:
                np.copyto(h, o)
                env[id(v)] = h
    return [np.array(env[id(v)]) for v in graph.outputs], inputs


@given(programs())
def test_random_programs_through_the_arena(prog):
    g, args = prog
    for graph in (g, fuse(g)):
        plan = plan_memory(graph)
        check_plan(graph, plan)
        got, _ = run_with_plan(graph, plan, args)
        for a, b in zip(run_graph(graph, args), got, strict=True):
            np.testing.assert_array_equal(a, b)
        assert plan.planned_bytes <= plan.naive_bytes


def _train_step_graph():
    """MLP forward, hand-written backward and a momentum update (no autodiff needed)."""
    w1 = sf.Parameter(sf.Tensor(RNG.standard_normal((16, 32)).astype(np.float32) * 0.1), name="w1")
    w2 = sf.Parameter(sf.Tensor(RNG.standard_normal((32, 10)).astype(np.float32) * 0.1), name="w2")
    v1 = sf.Parameter(sf.Tensor(np.zeros((16, 32), np.float32)), name="v1")
    v2 = sf.Parameter(sf.Tensor(np.zeros((32, 10), np.float32)), name="v2")

    def step(x, y):
        h = ops.relu(ops.matmul(x, w1))
        logits = ops.matmul(h, w2)
        p = ops.softmax(logits, -1)
        loss = ops.mean(ops.softmax_cross_entropy(logits, y))
        dl = (p - y) / x.shape[0]
        g2 = ops.matmul(ops.transpose(h, (1, 0)), dl)
        dh = ops.matmul(dl, ops.transpose(w2, (1, 0))) * (h > 0).astype(sf.float32)
        g1 = ops.matmul(ops.transpose(x, (1, 0)), dh)
        for w, v, g in ((w1, v1, g1), (w2, v2, g2)):
            nv = v * 0.9 + g
            ops.assign(v, nv)
            ops.assign(w, w - nv * 0.01)
        return loss
    x = sf.Tensor(RNG.standard_normal((8, 16)).astype(np.float32))
    y = sf.Tensor(np.eye(10, dtype=np.float32)[RNG.integers(0, 10, 8)])
    jf = sf.jit(step)
    tr = jf.trace(x, y)
    args = [x.asnumpy(), y.asnumpy()] + [p.asnumpy() for p in tr.captured]
    return tr, args


def test_train_step_updates_parameters_in_their_own_buffers():
    tr, args = _train_step_graph()
    pairs = tr.donation()
    assert len(pairs) == 4                     # w1, v1, w2, v2
    for graph in (tr.graph, fuse(tr.graph)):
        plan = plan_memory(graph, pairs)
        check_plan(graph, plan)
        assert plan.donated == dict(pairs), plan.describe(graph)
        got, inputs = run_with_plan(graph, plan, args)
        want = run_graph(graph, args)
        for a, b in zip(want, got, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        for j, i in plan.donated.items():       # the update landed in the input's own buffer
            np.testing.assert_array_equal(inputs[i], want[j])
        assert plan.planned_bytes < plan.naive_bytes


def test_inplace_only_over_dying_inputs():
    def f(a):
        b = ops.exp(a)          # a is a graph input: never overwritten
        c = ops.tanh(b)         # b dies here: c may take b's buffer
        return c * 2.0 + b.sum()   # ... but b is still used here, so not
    x = sf.Tensor(RNG.standard_normal((4, 4)).astype(np.float32))
    g = sf.jit(f).trace(x).graph
    plan = plan_memory(g)
    check_plan(g, plan)
    ids = {id(v): n.op for n in g.nodes for v in n.outputs}
    assert all(ids[o] != "tanh" for o in plan.inplace)          # b lives on past tanh
    assert all(plan.buffer_of.get(id(v)) != (INPUT, 0) for v in ids)  # inputs are not donated
    mul = next(n for n in g.nodes if n.op == "mul")
    assert id(mul.outputs[0]) in plan.inplace                    # tanh's result dies at the mul


def test_llvm_train_step_updates_parameters_in_place():
    """On the LLVM backend the jitted step writes updated Parameters into their own arrays
    (no new array per step) and matches the interpreter."""
    import pytest
    pytest.importorskip("sporeflow.backends.llvm", reason="LLVM backend not present")

    def make():
        rng = np.random.default_rng(7)
        w = sf.Parameter(sf.Tensor(rng.standard_normal((6, 4)).astype(np.float32)), name="w")
        v = sf.Parameter(sf.Tensor(np.zeros((6, 4), np.float32)), name="v")

        def step(x):
            loss, g = sf.value_and_grad(lambda a: ops.mean(ops.tanh(ops.matmul(a, w)) ** 2), None, [w])(x)
            nv = v * 0.9 + g[0]
            ops.assign(v, nv)
            ops.assign(w, w - nv * 0.1)
            return loss
        return w, v, step
    x = sf.Tensor(np.random.default_rng(8).standard_normal((5, 6)).astype(np.float32))
    wi, vi, si = make()
    wl, vl, sl = make()
    fi, fl = sf.jit(si, backend="interp"), sf.jit(sl, backend="llvm")
    before = (wl._data, vl._data)
    for _ in range(3):
        np.testing.assert_allclose(fl(x).asnumpy(), fi(x).asnumpy(), rtol=1e-5)
    assert wl._data is before[0] and vl._data is before[1]       # same buffers, updated in place
    np.testing.assert_allclose(wl.asnumpy(), wi.asnumpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vl.asnumpy(), vi.asnumpy(), rtol=1e-5, atol=1e-6)


def test_llvm_output_arrays_reused_only_when_unreferenced():
    import pytest
    pytest.importorskip("sporeflow.backends.llvm", reason="LLVM backend not present")
    x = sf.Tensor(np.arange(40000, dtype=np.float32))
    f = sf.jit(lambda a: a * 2.0 + 1.0, backend="llvm")
    first = f(x)
    keep = first.asnumpy().copy()
    second = f(x * 3.0)                   # `first` is still referenced: must not be overwritten
    np.testing.assert_array_equal(first.asnumpy(), keep)
    del second
    np.testing.assert_array_equal(f(x).asnumpy(), keep)
    exe = next(iter(f._cache.values())).executable
    a = x.asnumpy()
    out = exe(a)[0]
    ptr = out.ctypes.data
    del out                               # unreferenced: the next call reuses the buffer
    assert exe(a)[0].ctypes.data == ptr
    y = f(x)                              # `y = f(x)` in a loop: two arrays take turns, none freed
    seen = []
    for _ in range(6):
        y = f(x)
        seen.append(weakref.ref(y._data))
    assert all(r() is not None for r in seen) and len({id(r()) for r in seen}) == 2
    np.testing.assert_array_equal(y.asnumpy(), keep)


def test_llvm_pointer_tables_follow_every_new_input_array():
    """The executable keeps each input slot's pointer while the same array comes back; a new
    array, a freed one whose address is reused, and a strided view (copied) must each be read
    from their own buffer, and an array updated in place is read afresh."""
    import pytest
    pytest.importorskip("sporeflow.backends.llvm", reason="LLVM backend not present")
    f = sf.jit(lambda a, b: a * b + 1.0, backend="llvm")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 300)).astype(np.float32)
    f(sf.Tensor(a), sf.Tensor(b))
    exe = next(iter(f._cache.values())).executable
    for step in range(6):
        if step % 2:
            a = rng.standard_normal(300).astype(np.float32)     # a new array in slot 0
        if step == 3:
            del b
            gc.collect()
            b = rng.standard_normal(300).astype(np.float32)     # may land on b's old address
        np.testing.assert_array_equal(exe(a, b)[0], a * b + 1.0)
        a[:] += 1.0                                              # same array, new contents
        np.testing.assert_array_equal(exe(a, b)[0], a * b + 1.0)
        np.testing.assert_array_equal(exe(b, a)[0], a * b + 1.0)     # the arrays swap slots
    wide = rng.standard_normal((300, 2)).astype(np.float32)
    np.testing.assert_array_equal(exe(wide[:, 1], b)[0], wide[:, 1] * b + 1.0)
    np.testing.assert_array_equal(f(sf.Tensor(a), sf.Tensor(b)).asnumpy(), a * b + 1.0)
