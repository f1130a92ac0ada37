"""Python control flow on traced tensors (frontend/autograph.py): `if`/`while`/`for`/`break`/
`continue`/`return`/ternary/`and`/`or`/`not` compile to cond / while_loop / scan when the condition
is traced, and keep Python semantics when it is a Python value; results equal eager execution,
grads equal finite differences, the errors name the variable and the user's line."""
from __future__ import annotations

import os
import types

import numpy as np
import pytest
from hypothesis import given, strategies as st

import sporeflow as sf
from sporeflow import nn, ops
from sporeflow.errors import TracerError
from sporeflow.frontend.autograph import convert

HERE = os.path.abspath(__file__)
_SRC = open(HERE).read().splitlines()


def line_of(marker: str) -> int:
    hits = [i + 1 for i, s in enumerate(_SRC) if s.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, marker
    return hits[0]


def T(a, dtype=np.float32):
    return sf.Tensor(np.asarray(a, dtype))


def ops_in(graph, name: str) -> int:
    return [n.op for n in graph.nodes].count(name)


def close(a, b, tol=1e-5):
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        np.testing.assert_allclose(np.asarray(x.asnumpy() if hasattr(x, "asnumpy") else x, np.float64),
                                   np.asarray(y.asnumpy() if hasattr(y, "asnumpy") else y, np.float64),
                                   rtol=tol, atol=tol)


# ---- if / ternary / and / or / not, nested two deep ----------------------------------------------------
def branches(x, flag):
    if x.sum() > 0:
        if x[0] > x[1]:
            y = x * 2
        else:
            y = x + 1
        if flag:              # a Python condition: plain Python
            y = y * 10
    elif x.max() > -1:
        y = -x
    else:
        y = x * x
    z = y if y.sum() > 3 else -y
    both = (x[0] > 0) and (x[1] > 0)
    either = not ((x[0] > 1) or (x[1] < -1))
    return z, both, either


@given(st.lists(st.floats(-3, 3, width=32), min_size=2, max_size=2), st.booleans())
def test_if_ternary_bool_ops_match_eager(vals, flag):
    x = T(vals)
    close(sf.jit(branches)(x, flag), branches(x, flag))


def test_one_cond_per_converted_statement_and_python_conditions_stay_python():
    g = sf.jit(branches).trace(T([1.0, 2.0]), True).graph
    # outer if/elif (2, the elif is a cond inside the else branch) + ternary at the top level
    assert ops_in(g, "cond") == 2
    assert "logical_and" in str(g) and "logical_or" in str(g) and "logical_not" in str(g)
    sub = [n.attrs["then_branch"] for n in g.nodes if n.op == "cond"][0]
    assert ops_in(sub, "cond") == 1          # the inner tensor if; `if flag:` left no node

    def unrolled(x):
        for i in range(3):
            x = x + i
        return x
    g2 = sf.jit(unrolled).trace(T([0.0])).graph
    assert ops_in(g2, "scan") == ops_in(g2, "while_loop") == 0 and ops_in(g2, "add") == 3


# ---- loops ----------------------------------------------------------------------------------------------
def loops(x, xs, n):
    k = 0
    while x.sum() < 50:               # data-dependent while: a while_loop
        x = x * 2
        k = k + 1
    acc = ops.zeros_like(xs[0])
    for row in xs:                    # over a tensor: a scan
        if row.sum() < 0:
            continue
        acc = acc + row
        if acc.sum() > 20:
            break
    for i in range(n):                # a traced bound: a while_loop
        acc = acc + 1.0
    return x, k, acc


@given(st.floats(0.5, 3), st.integers(0, 3))
def test_while_for_break_continue_match_eager(scale, n):
    xs = T(np.array([[1, 2], [-3, -1], [4, 5], [9, 9], [1, 1]]) * scale)
    args = (T([scale, 1.0]), xs, sf.Tensor(np.int32(n)))
    close(sf.jit(loops)(*args), loops(*args))
    g = sf.jit(loops).trace(*args).graph
    assert ops_in(g, "while_loop") == 2 and ops_in(g, "scan") == 1


def early_return(x):
    for i in range(3):
        if x.sum() > 10:
            return x * 0.5
        x = x * 3
    if x[0] > 0:
        return x
    return -x


@pytest.mark.parametrize("v", [[1.0, 1.0], [20.0, 1.0], [-1.0, -0.5]])
def test_early_return(v):
    close(sf.jit(early_return)(T(v)), early_return(T(v)))


class Net(nn.Cell):
    """Every construct, nested two deep, in a Cell run in GRAPH and PYNATIVE mode."""

    def __init__(self):
        super().__init__()
        self.dense = nn.Dense(3, 3)
        self.steps = 2

    def construct(self, x):
        h = self.dense(x)
        for _ in range(self.steps):
            if h.sum() > 0:
                h = h * 0.5
            else:
                while h.sum() < 0:
                    h = h + 1.0
        return h if h.max() > 0.1 else h * 2


@pytest.mark.parametrize("v", [[1.0, 2.0, 3.0], [-3.0, -2.0, -5.0]])
def test_graph_mode_equals_pynative(v):
    net = Net()
    x = T([v])
    eager = net(x)
    sf.set_context(mode=sf.GRAPH_MODE)
    close(net(x), eager)


# ---- Parameters assigned in a branch ---------------------------------------------------------------------
class Counter(nn.Cell):
    def __init__(self):
        super().__init__()
        self.count = sf.Parameter(sf.Tensor(np.int32(0)), name="count")
        self.total = sf.Parameter(T([0.0, 0.0]), name="total")

    def construct(self, x):
        if x.sum() > 0:
            self.total = self.total + x       # attribute assignment to a Parameter: an assign
            ops.assign_add(self.count, sf.Tensor(np.int32(1)))
        return self.total * 1.0


def test_parameters_assigned_in_a_branch_are_threaded():
    net = Counter()
    step = sf.jit(net)
    for v in ([1.0, 2.0], [-5.0, 1.0], [1.0, 1.0]):
        step(T(v))
    assert int(net.count.asnumpy()) == 2
    close(net.total, T([2.0, 3.0]))


# ---- autodiff and vmap ------------------------------------------------------------------------------------
def smooth(x):
    if x.sum() > 0:
        y = ops.sin(x) * x
    else:
        y = x * x * x
    for r in range(2):
        y = y * 1.5 if y.sum() > 0 else ops.exp(y)
    return y.sum()


def fd_grad(f, x, eps=1e-3):
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for i in range(x.size):
        d = np.zeros_like(x)
        d.flat[i] = eps
        g.flat[i] = (float(f(T(x + d))) - float(f(T(x - d)))) / (2 * eps)
    return g


@pytest.mark.parametrize("v", [[0.3, 0.7], [-0.4, -0.9]])
def test_grad_of_converted_if_matches_finite_differences(v):
    g = sf.jit(sf.grad(smooth))(T(v))
    np.testing.assert_allclose(g.asnumpy(), fd_grad(smooth, v), rtol=2e-2, atol=2e-3)


def scan_sum(xs):
    acc = xs[0] * 0.0
    for row in xs:
        acc = acc * 0.5 + ops.sin(row)
    return acc.sum()


def test_grad_of_converted_for_over_a_tensor():
    v = np.array([[0.1, 0.2], [0.3, -0.4], [0.5, 0.6]])
    g = sf.jit(sf.grad(scan_sum))(T(v))
    np.testing.assert_allclose(g.asnumpy(), fd_grad(scan_sum, v), rtol=2e-2, atol=2e-3)


def grow(x):
    while x.sum() < 10.0:             # a data-dependent trip count
        x = x * 1.5 + 0.1
    return (x * x).sum()


@pytest.mark.parametrize("backend", ["interp", "llvm"])
def test_grad_of_converted_data_dependent_while(backend):
    v = [0.3, 0.7]
    g = sf.jit(sf.grad(grow), backend=backend)(T(v))
    np.testing.assert_allclose(g.asnumpy(), fd_grad(grow, v), rtol=2e-2, atol=2e-3)


def pick(x):
    if x.sum() > 0:
        return x * 2.0
    return -x


def test_vmap_of_a_tensor_if_is_a_select():
    xs = T([[1.0, 2.0], [-3.0, 1.0], [0.5, -0.1]])
    out = sf.vmap(pick)(xs)
    close(out, ops.stack([pick(xs[i]) for i in range(3)]))
    g = sf.jit(sf.vmap(pick)).trace(xs).graph
    assert ops_in(g, "cond") == 0 and ops_in(g, "select") >= 1


# ---- the MindSpore gradient-accumulation tutorial, only the import changed ---------------------------
def tutorial(backend: str):
    import sporeflow as ms
    from sporeflow import Parameter, Tensor
    ms.set_context(backend=backend)
    ms.set_seed(1)

    class Network(nn.Cell):
        def __init__(self):
            super().__init__()
            self.flatten = nn.Flatten()
            self.dense_relu_sequential = nn.SequentialCell(nn.Dense(8 * 8, 16), nn.ReLU(), nn.Dense(16, 10))

        def construct(self, x):
            x = self.flatten(x)
            logits = self.dense_relu_sequential(x)
            return logits

    model = Network()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = nn.SGD(model.trainable_params(), 1e-2)
    accumulate_step = 2

    def forward_fn(data, label):
        logits = model(data)
        loss = loss_fn(logits, label)
        return loss / accumulate_step

    grad_fn = ms.value_and_grad(forward_fn, None, model.trainable_params())

    @ms.jit_class
    class Accumulator():
        def __init__(self, optimizer, accumulate_step, clip_norm=1.0):
            self.optimizer = optimizer
            self.clip_norm = clip_norm
            self.inner_grads = optimizer.parameters.clone(prefix="accumulate_", init='zeros')
            self.zeros = optimizer.parameters.clone(prefix="zeros_", init='zeros')
            self.counter = Parameter(Tensor(1, ms.int32), 'counter_')
            assert accumulate_step > 0
            self.accumulate_step = accumulate_step
            self.map = ops.HyperMap()

        def __call__(self, grads):
            self.map(ops.partial(ops.assign_add), self.inner_grads, grads)
            if self.counter % self.accumulate_step == 0:
                self.optimizer(self.inner_grads)
                self.map(ops.partial(ops.assign), self.inner_grads, self.zeros)
            ops.assign_add(self.counter, Tensor(1, ms.int32))
            return True

    accumulator = Accumulator(optimizer, accumulate_step)

    @ms.jit
    def train_step(data, label):
        loss, grads = grad_fn(data, label)
        loss = ops.depend(loss, accumulator(grads))
        return loss
    return model, loss_fn, train_step


@pytest.mark.parametrize("backend", ["interp", "llvm"])
def test_gradient_accumulation_tutorial(backend):
    model, loss_fn, train_step = tutorial(backend)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 1, 8, 8)).astype(np.float32)
    Y = rng.integers(0, 10, 64).astype(np.int32)
    params = model.trainable_params()
    w0 = [p.asnumpy().copy() for p in params]
    _, grads = sf.value_and_grad(lambda d, l: loss_fn(model(d), l), None, params)(sf.Tensor(X), sf.Tensor(Y))
    train_step(sf.Tensor(X[:32]), sf.Tensor(Y[:32]))
    for p, w in zip(params, w0):           # the first micro-batch only accumulates
        np.testing.assert_array_equal(p.asnumpy(), w)
    train_step(sf.Tensor(X[32:]), sf.Tensor(Y[32:]))
    for p, w, g in zip(params, w0, grads):  # == one SGD step on the 64-sample batch
        np.testing.assert_allclose(p.asnumpy(), w - 1e-2 * g.asnumpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(params[0].asnumpy(), w0[0])
    assert train_step.cache_size() == 1


# ---- what stays an error, at the user's line ----------------------------------------------------------------
def bad_types(x):
    if x.sum() > 0:  # TYPES
        y = x
    else:
        y = x[0]
    return y


def one_sided(x):
    if x.sum() > 0:
        z = x * 2
    return z + 1  # ONESIDED


def printing(x):
    print(x)  # PRINT
    return x


def side_effect(x, log):
    if x.sum() > 0:
        log.append(1)  # SIDE
    return x


def side_effect_caller(x):
    return side_effect(x, [])


class Flagger:
    def __init__(self):
        self.hits = 0

    def __call__(self, x):
        if x.sum() > 0:
            self.hits = self.hits + 1  # ATTR
        return x


def loop_dtype(x):
    n = sf.Tensor(np.int32(0))
    while x.sum() < 10:  # LOOPTYPE
        x = x * 2
        n = n + 0.5
    return n


@pytest.mark.parametrize("fn,marker,needles", [
    (bad_types, "TYPES", ["variable `y`", "f32[2]", "f32[]", "same shape and dtype"]),
    (one_sided, "ONESIDED", ["variable `z`", "defined only in the true branch"]),
    (printing, "PRINT", ["ops.Print"]),
    (side_effect_caller, "SIDE", ["list.append()", "changes a Python object"]),
    (Flagger(), "ATTR", ["setting Flagger.hits", "changes a Python object"]),
    (loop_dtype, "LOOPTYPE", ["variable `n`", "i32[]", "f32[]"]),
])
def test_refused_code_names_the_variable_and_line(fn, marker, needles):
    with pytest.raises(TracerError) as ei:
        sf.jit(fn)(T([1.0, 2.0]))
    msg = str(ei.value)
    assert f'File "{HERE}", line {line_of(marker)}' in msg, msg
    for n in needles:
        assert n in msg, (n, msg)


def test_conversion_is_cached_per_code_object():
    a, b = convert(pick), convert(pick)
    assert a is not pick and a.__code__ is b.__code__
    assert convert(print) is print and convert(np.sum) is np.sum


def _flatten(out) -> list:
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in _flatten(o)]
    return [out]


def test_recursive_global_helper_calls_itself_from_a_converted_branch():
    def total(x):
        leaves = _flatten((x, [x * 2.0, (x + 1.0,)]))
        return leaves[0] + leaves[1] + leaves[2]

    x = T([1.0, 2.0])
    np.testing.assert_allclose(sf.jit(total)(x).asnumpy(), total(x).asnumpy())
    converted = convert(_flatten)
    assert converted is not _flatten and converted.__name__ == converted.__code__.co_name == "_flatten"


def test_nested_def_in_converted_code_is_not_converted_twice():
    def outer(x):
        def inner(y):
            if y.sum() > 0:
                return ops.exp(y)
            return y
        return inner(x) + inner(-x)

    x = T([0.5, 1.0])
    np.testing.assert_allclose(sf.jit(outer)(x).asnumpy(), outer(x).asnumpy(), rtol=1e-6)


def test_package_code_reached_through_an_unnormalised_path_is_not_converted():
    from sporeflow.frontend import autograph
    ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(autograph.__file__))))
    f = types.FunctionType(pick.__code__.replace(
        co_filename=os.path.join(ROOT, "bench", "..", "sporeflow", "x.py")), {})
    assert not autograph._convertible(f) and autograph._convertible(pick)


def raises_in_branch(x):
    if x.sum() > 0:
        raise ValueError("positive input")
    return x


def test_raise_in_a_traced_branch_is_refused_not_raised_for_every_input():
    with pytest.raises(TracerError, match=r"true branch of the `if` at line \d+ raised ValueError\(positive input\)"):
        sf.jit(raises_in_branch)(T([-1.0]))


COUNTER = 0


def bumps_a_global(x):
    global COUNTER
    COUNTER += 1                 # outside any traced branch: plain Python, runs at trace time
    if x.sum() > 0:
        COUNTER = 100
        x = x + 1.0
    return x


def test_assigning_a_global_inside_a_traced_branch_is_refused():
    with pytest.raises(TracerError, match="assigning the global/nonlocal variable `COUNTER`"):
        sf.jit(bumps_a_global)(T([-1.0]))
    assert COUNTER == 1
