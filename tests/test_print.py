"""ops.Print / ops.print_ (primitives/debug.py): prints at run time from compiled code on every
backend, in MindSpore's format, in program order, each time the step runs; a print is never
dropped by DCE, does not change gradients, and prints under grad, vmap and a converted `if`."""
from __future__ import annotations

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import nn, ops
from sporeflow.ir.parser import parse
from sporeflow.ir.printer import print_graph

BACKENDS = ("interp", "llvm", "cuda-emulated")
MS_SAMPLE = """Print Tensor x and Tensor y:
Tensor(shape=[2, 1], dtype=Int32, value=
[[1],
 [1]])
Tensor(shape=[2, 2], dtype=Int32, value=
[[1, 1],
 [1, 1]])
"""


class PrintDemo(nn.Cell):          # MindSpore's documented example
    def __init__(self):
        super().__init__()
        self.print = ops.Print()

    def construct(self, x, y):
        self.print('Print Tensor x and Tensor y:', x, y)
        return x


def _xy():
    return sf.Tensor(np.ones([2, 1]).astype(np.int32)), sf.Tensor(np.ones([2, 2]).astype(np.int32))


def test_eager_print_matches_mindspore_sample(capsys):
    ops.print_('Print Tensor x and Tensor y:', *_xy())
    assert capsys.readouterr().out == MS_SAMPLE


@pytest.mark.parametrize("backend", BACKENDS)
def test_compiled_print_runs_on_every_call_in_program_order(backend, capsys):
    net = PrintDemo()
    step = sf.jit(lambda x, y: net(x, y), backend=backend)
    x, y = _xy()
    step(x, y)
    step(x, y)
    assert capsys.readouterr().out == MS_SAMPLE * 2

    def two(a):                    # the result of neither print is used: DCE must keep both
        ops.print_("first", a)
        b = a * 3.0
        ops.print_("second", b, 7)
        return b

    out = sf.jit(two, backend=backend)(sf.Tensor(np.float32([1.0, 2.0])))
    np.testing.assert_allclose(out.asnumpy(), [3.0, 6.0])
    text = capsys.readouterr().out
    assert text == ("first\nTensor(shape=[2], dtype=Float32, value=\n[1., 2.])\n"
                    "second\nTensor(shape=[2], dtype=Float32, value=\n[3., 6.])\n"
                    "Tensor(shape=[], dtype=Int64, value= 7)\n"), text


@pytest.mark.parametrize("dtype", [sf.float16, sf.bfloat16])
def test_half_types_print_their_values(dtype, capsys):
    x = sf.Tensor(np.float32([1.5, -2.0])).astype(dtype)
    sf.jit(lambda a: ops.print_(a) or a, backend="llvm")(x)
    name = "Float16" if dtype == sf.float16 else "BFloat16"
    assert capsys.readouterr().out == f"Tensor(shape=[2], dtype={name}, value=\n[ 1.5, -2. ])\n"


def _loss(w):
    ops.print_("w", w)
    return (w * w).sum()


@pytest.mark.parametrize("backend", ("interp", "llvm"))
def test_print_does_not_change_the_gradient_and_prints_the_forward(backend, capsys):
    w = sf.Tensor(np.float32([1.0, -2.0, 3.0]))
    g = sf.jit(sf.grad(_loss), backend=backend)(w)
    np.testing.assert_allclose(g.asnumpy(), 2 * w.asnumpy())
    assert capsys.readouterr().out.count("Tensor(shape=[3]") == 1


def test_vmap_prints_the_batched_value(capsys):
    out = sf.vmap(lambda r: (ops.print_(r), r.sum())[1])(sf.Tensor(np.ones((2, 3), np.float32)))
    np.testing.assert_allclose(out.asnumpy(), [3.0, 3.0])
    assert "Tensor(shape=[2, 3], dtype=Float32" in capsys.readouterr().out


def _branchy(x):
    if x.sum() > 0:            # a traced condition: a cond whose true branch prints
        ops.print_("positive")
        x = x * 2.0
    return x


@pytest.mark.parametrize("backend", ("interp", "llvm"))
def test_print_in_a_converted_branch_prints_only_when_taken(backend, capsys):
    f = sf.jit(_branchy, backend=backend)
    f(sf.Tensor(np.float32([1.0])))
    f(sf.Tensor(np.float32([-1.0])))
    f(sf.Tensor(np.float32([2.0])))
    assert capsys.readouterr().out == "positive\npositive\n"


def test_print_node_round_trips_through_the_ir_text():
    g = sf.jit(lambda a: (ops.print_("a is", a), a + 1.0)[1]).trace(sf.Tensor(np.float32([1.0]))).graph
    text = print_graph(g)
    assert "print(" in text and '"a is"' in text
    assert print_graph(parse(text)) == text


def test_unprintable_argument_is_refused():
    with pytest.raises(TypeError, match="print_: arguments must be"):
        ops.print_(object())
