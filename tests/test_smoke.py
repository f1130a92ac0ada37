import numpy as np

import sporeflow as sf
from sporeflow import ops
import sporeflow.ir as ir


def test_jit_matches_eager_and_ir_round_trips():
    x = sf.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    b = sf.Tensor(np.ones((3, 4), np.float32))

    def f(a, w):
        return ops.relu(a @ w).sum() * 2

    jf = sf.jit(f)
    np.testing.assert_allclose(jf(x, b).asnumpy(), f(x, b).asnumpy())
    text = str(jf.trace(x, b).graph)
    assert str(ir.parse(text)) == text
    ir.verify(ir.parse(text))
