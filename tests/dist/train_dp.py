"""Run under mpirun by tests/test_dist.py: data-parallel training equals single-process training
at the same global batch; the gradient all-reduce is bucketed; only rank 0 writes checkpoints.

    mpirun -n N python tests/dist/train_dp.py CKPT_DIR BACKEND
"""
import os
import sys

import numpy as np

import sporeflow as sf
from sporeflow import communication as C, dataset as ds, nn
from sporeflow.train import CheckpointConfig, Model, ModelCheckpoint

ckpt_dir, backend = sys.argv[1], sys.argv[2]
C.init(timeout=30)
r, n = C.get_rank(), C.get_group_size()
sf.set_context(mode=sf.GRAPH_MODE, backend=backend)
GLOBAL_BATCH, STEPS = 8, 4
rng = np.random.default_rng(0)
X = rng.standard_normal((GLOBAL_BATCH * STEPS, 6)).astype(np.float32)
Y = rng.integers(0, 3, GLOBAL_BATCH * STEPS).astype(np.int32)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def make():
    sf.set_seed(3)
    net = nn.SequentialCell([nn.Dense(6, 5, activation="relu"), nn.Dense(5, 4, activation="tanh"), nn.Dense(4, 3)])
    return net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")


def params(net):
    return {p.name: p.asnumpy().copy() for p in net.trainable_params()}


# 1. Model.fit in DATA_PARALLEL: the dataset shards itself, the step all-reduces in buckets
sf.set_auto_parallel_context(parallel_mode=sf.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                             comm_fusion={"allreduce": {"mode": "size", "config": 100 / (1 << 20)}})
net, loss = make()
opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
model = Model(net, loss, opt)
data = ds.NumpySlicesDataset({"x": X, "y": Y}, shuffle=False).batch(GLOBAL_BATCH // n)
assert data.get_dataset_size() == STEPS, data.get_dataset_size()
cfg = CheckpointConfig(save_checkpoint_steps=2, keep_checkpoint_max=5)
model.train(1, data, callbacks=[ModelCheckpoint(prefix="dp", directory=ckpt_dir, config=cfg)],
            dataset_sink_mode=False)
dp = params(net)

# the compiled step: one all_reduce per bucket, fewer buckets than gradients
step = nn.TrainOneStepCell(nn.WithLossCell(make()[0], loss), nn.SGD(make()[0].trainable_params(), 0.1))
buckets = step.grad_reducer.buckets
graph = sf.jit(step).trace(sf.Tensor(X[:GLOBAL_BATCH // n]), sf.Tensor(Y[:GLOBAL_BATCH // n])).graph
n_ar = sum(1 for node in graph.walk() if node.op == "all_reduce")
assert n_ar == len(buckets) and 1 < len(buckets) < 6, (n_ar, buckets)

# 2. a functional loop with nn.DistributedGradReducer: the same training
net2, _ = make()
opt2 = nn.Momentum(net2.trainable_params(), 0.1, 0.9)
reducer = nn.DistributedGradReducer(opt2.parameters, mean=True)
grad_fn = sf.value_and_grad(lambda x, y: loss(net2(x), y), None, opt2.parameters)


@sf.jit
def train_step(x, y):
    lv, grads = grad_fn(x, y)
    opt2(reducer(grads))
    return lv


for s in range(STEPS):
    rows = np.arange(s * GLOBAL_BATCH, (s + 1) * GLOBAL_BATCH)[r::n]    # the strided shard
    train_step(sf.Tensor(X[rows]), sf.Tensor(Y[rows]))
fn = params(net2)

# 3. the single-process reference at the same global batch (no collectives)
sf.reset_auto_parallel_context()
net3, _ = make()
single = nn.TrainOneStepCell(nn.WithLossCell(net3, loss), nn.Momentum(net3.trainable_params(), 0.1, 0.9))
assert single.grad_reducer is None
jstep = sf.jit(single)
for s in range(STEPS):
    jstep(sf.Tensor(X[s * GLOBAL_BATCH:(s + 1) * GLOBAL_BATCH]), sf.Tensor(Y[s * GLOBAL_BATCH:(s + 1) * GLOBAL_BATCH]))
ref = params(net3)
worst = max(float(np.max(np.abs(dp[k] - ref[k]))) for k in ref)
worst_fn = max(float(np.max(np.abs(fn[k] - ref[k]))) for k in ref)
moved = max(float(np.max(np.abs(ref[k] - params(make()[0])[k]))) for k in ref)
assert worst < 1e-5 and worst_fn < 1e-5 and moved > 1e-2, (worst, worst_fn, moved)
C.get_group_size()
sf.ops.all_reduce(sf.Tensor(np.zeros(1, np.float32)))   # a barrier: every rank finished saving
say(f"rank {r}: dp-vs-single max|diff| {worst:.3g} (functional {worst_fn:.3g}), {len(buckets)} buckets, "
    f"files {sorted(os.listdir(ckpt_dir))}")
