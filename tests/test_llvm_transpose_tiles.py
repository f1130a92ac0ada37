"""Transposing copies on LLVM (kernels_shape.copy_strided's TILE x TILE blocks): every
permutation of shapes around and off the tile size, in 1-, 2-, 4- and 8-byte dtypes, moves the
exact bits numpy's transpose does (edge tiles included)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sporeflow.ir import GraphBuilder, TensorType
from sporeflow.ir import dtypes as D

pytest.importorskip("sporeflow.backends.llvm", reason="LLVM backend not present")

DTYPES = [(D.int8, np.int8), (D.float16, np.float16), (D.float32, np.float32), (D.int64, np.int64)]


def _transpose_graph(shape, perm, dt):
    b = GraphBuilder("tr")
    x = b.add_input(TensorType(shape, dt))
    return b.finish(b.emit("transpose", [x], {"perm": perm}))


@settings(deadline=None)
@given(shape=st.lists(st.sampled_from([1, 3, 15, 16, 17, 40]), min_size=2, max_size=4),
       data=st.data(), which=st.integers(0, len(DTYPES) - 1))
def test_tiled_transposes_move_the_exact_bits(shape, data, which):
    from sporeflow.backends import get_backend
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    dt, np_dt = DTYPES[which]
    rng = np.random.default_rng(len(shape))
    x = (rng.standard_normal(shape) * 100).astype(np_dt)
    exe = get_backend("llvm").compile(_transpose_graph(tuple(shape), perm, dt))
    np.testing.assert_array_equal(exe(x)[0], x.transpose(perm))


def test_a_large_2d_transpose_takes_the_tiled_path():
    from sporeflow.backends import get_backend
    exe = get_backend("llvm").compile(_transpose_graph((70, 33), (1, 0), D.float32))
    assert "%tj" in exe.source and "%ll" in exe.source      # the tile loops
    x = np.arange(70 * 33, dtype=np.float32).reshape(70, 33)
    np.testing.assert_array_equal(exe(x)[0], x.T)


@pytest.mark.parametrize("shape,perm", [((645, 500), (1, 0)),            # tiled axis 0: 31 blocks of 16 + 4 rows
                                        ((33, 200, 50), (0, 2, 1)),      # one block per outer row
                                        ((3, 17, 40, 130), (3, 1, 0, 2))])
def test_large_transposes_run_on_all_cores_and_move_the_exact_bits(shape, perm):
    from sporeflow.backends import get_backend
    from sporeflow.backends.llvm.parallel import gomp_available
    exe = get_backend("llvm").compile(_transpose_graph(shape, perm, D.float32))
    if gomp_available():
        assert "GOMP_parallel" in exe.source
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    np.testing.assert_array_equal(exe(x)[0], x.transpose(perm))
