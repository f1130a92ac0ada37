"""Run under mpirun by tests/test_dist.py: the overlapped all-reduce (start/wait split by
passes/overlap.py). Checks that
  1. the split pair's rules give the same grad, jvp and vmap as the blocking all_reduce;
  2. a data-parallel train step gives bit-identical parameters overlapped and blocking, on the
     interpreter and LLVM;
  3. in the compiled step the first bucket's start comes before backward ops that later buckets
     still need, and every wait after the whole backward pass (blocking: every all_reduce after it).
Prints 'OK <rank>' at the end."""
import sys

import numpy as np

import sporeflow as sf
from sporeflow import communication as C, nn
from sporeflow.ir.interpret import run_graph
from sporeflow.passes import prepare_for_backend
from sporeflow.passes.autodiff import vjp_graph
from sporeflow.passes.forward import jvp_graph
from sporeflow.passes.overlap import overlap_collectives
from sporeflow.passes.vmap import batch_graph

C.init(timeout=30)
r, n = C.get_rank(), C.get_group_size()
rng = np.random.default_rng(r)

# 1. rules: differentiate / batch the split graph and the blocking one, run both on the interpreter
w = rng.standard_normal(5)
for op in ("sum", "max", "prod"):
    g = sf.jit(lambda u, op=op: (sf.ops.all_reduce(sf.ops.sin(u) * (r + 1.0), op) ** 2).sum()).trace(
        sf.Tensor(w)).graph
    split = overlap_collectives(g)
    ops = [nd.op for nd in split.nodes]
    assert "all_reduce" not in ops and ops.count("all_reduce_start") == ops.count("all_reduce_wait") == 1, ops
    for tf, args in ((lambda h: vjp_graph(h, [True]), [w, np.float64(1.5)]),
                     (lambda h: jvp_graph(h, [True]), [w, np.cos(w)])):
        want, got = run_graph(tf(g), args), run_graph(tf(split), args)
        for a, b in zip(want, got):
            np.testing.assert_allclose(b, a, rtol=1e-13, err_msg=f"rules of the split all_reduce({op})")
b = rng.standard_normal((2, 5, 3))
for ax in (0, 1):
    g = sf.jit(lambda u: sf.ops.all_reduce(u, "max") * 2.0).trace(sf.Tensor(np.zeros((5, 3)))).graph
    want = run_graph(batch_graph(g, [ax], 2)[0], [np.moveaxis(b, 0, ax)])
    got = run_graph(batch_graph(overlap_collectives(g), [ax], 2)[0], [np.moveaxis(b, 0, ax)])
    np.testing.assert_array_equal(got[0], want[0], err_msg=f"vmap of the split all_reduce, in_axes={ax}")

# 2. data-parallel training, overlapped and blocking
sf.set_auto_parallel_context(parallel_mode=sf.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                             comm_fusion={"allreduce": {"mode": "size", "config": 400 / (1 << 20)}})
X = rng.standard_normal((4, 8, 6)).astype(np.float32)
Y = rng.integers(0, 3, (4, 8)).astype(np.int32)


def make():
    sf.set_seed(5)
    net = nn.SequentialCell([nn.Dense(6, 16, activation="relu"), nn.Dense(16, 16, activation="tanh"),
                             nn.Dense(16, 3)])
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    return nn.TrainOneStepCell(nn.WithLossCell(net, loss), nn.Momentum(net.trainable_params(), 0.1, 0.9)), net


def train(backend: str, overlap: bool):
    sf.set_auto_parallel_context(comm_overlap=overlap)
    step, net = make()
    jstep = sf.jit(step, backend)
    for s in range(len(X)):
        jstep(sf.Tensor(X[s]), sf.Tensor(Y[s]))
    g = prepare_for_backend(jstep.trace(sf.Tensor(X[0]), sf.Tensor(Y[0])).graph, backend)
    return [p.asnumpy().copy() for p in net.trainable_params()], g, len(step.grad_reducer.buckets)


def ancestors(node, inside):
    seen, todo = set(), [node]
    while todo:
        for v in todo.pop().inputs:
            p = v.producer
            if p is not None and id(p) in inside and id(p) not in seen:
                seen.add(id(p))
                todo.append(p)
    return seen


HEAVY = ("matmul", "fused", "reduce_sum")
for backend in ("interp", "llvm"):
    ov, g_ov, nb = train(backend, True)
    bl, g_bl, _ = train(backend, False)
    for a, b_ in zip(ov, bl):
        np.testing.assert_array_equal(a, b_, err_msg=f"overlapped vs blocking parameters ({backend})")
    assert nb >= 3, nb
    # the overlapped step: starts early, waits late
    pos = {id(nd): i for i, nd in enumerate(g_ov.nodes)}
    starts = [nd for nd in g_ov.nodes if nd.op == "all_reduce_start"]
    waits = [nd for nd in g_ov.nodes if nd.op == "all_reduce_wait"]
    assert len(starts) == len(waits) == nb and not any(nd.op == "all_reduce" for nd in g_ov.nodes), backend
    first = starts[0]
    later = set().union(*(ancestors(s, pos) for s in starts[1:])) - ancestors(first, pos)
    heavy_after = [g_ov.nodes[pos[i]].op for i in later if pos[i] > pos[id(first)] and
                   g_ov.nodes[pos[i]].op in HEAVY]
    assert heavy_after, f"{backend}: no backward op after the first start:\n{g_ov}"
    backward = set().union(*(ancestors(s, pos) for s in starts))
    assert min(pos[id(wt)] for wt in waits) > max(pos[i] for i in backward), f"{backend}: a wait too early:\n{g_ov}"
    # the blocking step: every all_reduce after every heavy op of the backward pass
    pos_b = {id(nd): i for i, nd in enumerate(g_bl.nodes)}
    ars = [nd for nd in g_bl.nodes if nd.op == "all_reduce"]
    assert len(ars) == nb and not any(nd.op == "all_reduce_start" for nd in g_bl.nodes)
    bw = set().union(*(ancestors(a, pos_b) for a in ars))
    assert min(pos_b[id(a)] for a in ars) > max(pos_b[i] for i in bw if g_bl.nodes[pos_b[i]].op in HEAVY)
    if r == 0:
        sys.stdout.write(f"{backend}: {nb} buckets; first start at node {pos[id(first)]} of {len(g_ov.nodes)}, "
                         f"{len(heavy_after)} backward ops after it; first wait at node "
                         f"{min(pos[id(wt)] for wt in waits)}\n")
sys.stdout.write(f"OK {r}\n")
sys.stdout.flush()
sys.exit(0)
