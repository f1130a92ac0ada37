"""A Python `if` on a traced tensor in a jit function becomes one cond (frontend/autograph.py):
same results as the eager Python run, Parameters assigned in a branch, elif chains, the Python
semantics of concrete tests, and clear errors (user line) where the branches cannot agree."""
import numpy as np
import pytest

import sporeflow as sf
from sporeflow import ops
from sporeflow.errors import TracerError


def T(*v):
    return sf.Tensor(np.asarray(v, np.float32))


@pytest.mark.parametrize("backend", ["interp", "llvm"])
def test_if_on_a_traced_tensor_runs_the_taken_branch(backend):
    w = sf.Parameter(T(1.0, 2.0), name="w")
    scale = 3.0

    def step(x):
        y = x * 2
        if x.sum() > 0:
            y = y + scale
            ops.assign(w, w - 1)
        elif x.sum() < -5:
            y = -y
        else:
            z = y * 0                          # noqa: F841 (a name only this branch gives a tensor)
            y = y * 10
        return y

    jstep = sf.jit(step, backend=backend)
    for x in ([1.0, 1.0], [-4.0, -4.0], [-1.0, 0.5]):
        want_w = w.asnumpy() - (1 if sum(x) > 0 else 0)
        got = jstep(T(*x)).asnumpy()
        s = sum(x)
        ref = np.asarray(x, np.float32) * 2
        ref = ref + 3.0 if s > 0 else -ref if s < -5 else ref * 10
        np.testing.assert_allclose(got, ref)
        np.testing.assert_allclose(w.asnumpy(), want_w)
    assert jstep.cache_size() == 1                 # one compiled graph holds every branch


def test_python_tests_keep_python_semantics():
    def f(x, flag):
        if flag:
            extra = 1.0
        if flag:
            x = x + extra
        return x, "extra" in dir()

    jf = sf.jit(f)
    out, _ = jf(T(1.0), True)
    np.testing.assert_allclose(out.asnumpy(), [2.0])
    out, _ = jf(T(1.0), False)                      # `extra` never assigned: still unbound, no error
    np.testing.assert_allclose(out.asnumpy(), [1.0])


def test_closure_cells_stay_live():
    k = 1.0

    @sf.jit
    def f(x):
        if x.sum() > 0:
            x = x * k
        return x

    np.testing.assert_allclose(f(T(2.0)).asnumpy(), [2.0])
    k = 5.0  # noqa: F841 (read by f through its cell)
    f2 = sf.jit(f.__wrapped__)
    np.testing.assert_allclose(f2(T(2.0)).asnumpy(), [10.0])


def test_branches_that_disagree_name_the_variable_and_line():
    def f(x):
        if x.sum() > 0:
            y = 1.0  # ONLY
        else:
            y = "one"
        return x * y

    with pytest.raises(TracerError) as ei:
        sf.jit(f)(T(1.0))
    msg = str(ei.value)
    assert "`y`" in msg and "test_if_convert.py" in msg


def test_an_if_that_returns_compiles_to_a_cond():
    def f(x):
        if x.sum() > 0:
            return x
        return -x

    for v in (1.0, -2.0):
        np.testing.assert_allclose(sf.jit(f)(T(v)).asnumpy(), [abs(v)])


def test_a_branch_temporary_is_unbound_after_the_if():
    def f(x):
        if x.sum() > 0:
            tmp = x + 1
            x = tmp * 2
        return x, "tmp" in locals()

    out, seen = sf.jit(f)(T(1.0))
    np.testing.assert_allclose(out.asnumpy(), [4.0])
    assert seen is False
