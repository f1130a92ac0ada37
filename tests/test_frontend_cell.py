"""nn.Cell core: parameter naming by attribute path, traversal, train flags, eager vs GRAPH_MODE
calls, scopes recorded in the IR."""
from __future__ import annotations

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import ops
from sporeflow.frontend.cell import Cell


def P(*shape, requires_grad=True, name=None):
    return sf.Parameter(sf.Tensor(np.random.default_rng(len(shape)).normal(size=shape).astype(np.float32)),
                        name=name, requires_grad=requires_grad)


class Fc(Cell):
    def __init__(self, i, o):
        super().__init__()
        self.weight = P(o, i)
        self.bias = P(o)

    def construct(self, x):
        return ops.dense(x, self.weight, self.bias)


class Block(Cell):
    def __init__(self):
        super().__init__()
        self.fc = Fc(4, 4)
        self.scale = P(4, requires_grad=False)

    def construct(self, x):
        return ops.relu(self.fc(x)) * self.scale


class Net(Cell):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = Fc(4, 2)

    def construct(self, x, *, double=False):
        y = self.head(self.block(x))
        return y * 2.0 if double else y


def test_parameter_names_follow_attribute_paths():
    net = Net()
    assert [n for n, _ in net.parameters_and_names()] == [
        "block.scale", "block.fc.weight", "block.fc.bias", "head.weight", "head.bias"]
    assert [n for n, _ in net.cells_and_names()] == ["", "block", "block.fc", "head"]
    assert [p.name for p in net.trainable_params()] == ["block.fc.weight", "block.fc.bias", "head.weight",
                                                        "head.bias"]
    assert [p.name for p in net.untrainable_params()] == ["block.scale"]
    assert list(net.parameters_dict()) == [n for n, _ in net.parameters_and_names()]
    assert [p.name for p in net.get_parameters(expand=False)] == []
    assert set(net.name_cells()) == {"block", "head"}


def test_shared_parameters_and_cells_are_listed_once():
    class Tied(Cell):
        def __init__(self):
            super().__init__()
            self.a = Fc(2, 2)
            self.b = self.a
            self.extra = self.a.weight

        def construct(self, x):
            return self.b(self.a(x))

    t = Tied()
    assert len(list(t.get_parameters())) == 2 and len(list(t.cells_and_names())) == 2


def test_set_train_propagates_and_attribute_bookkeeping():
    net = Net()
    assert not net.training and net.phase == "predict"
    net.set_train()
    assert all(c.training for _, c in net.cells_and_names()) and net.training_signature() == (True,) * 4
    net.set_train(False)
    assert not net.block.fc.training
    net.head = None                       # replacing a child cell removes its parameters
    assert [n for n, _ in net.parameters_and_names()] == ["block.scale", "block.fc.weight", "block.fc.bias"]
    del net.block.scale
    assert "block.scale" not in [n for n, _ in net.parameters_and_names()]
    net.insert_param_to_cell("extra", P(3))
    assert net.extra.name == "extra" and "extra" in net.parameters_dict()
    net.insert_child_to_cell("tail", Fc(2, 2))
    assert "tail.weight" in net.parameters_dict()


def test_forgetting_super_init_is_a_clear_error():
    class Bad(Cell):
        def __init__(self):
            self.w = P(2)

    with pytest.raises(RuntimeError, match=r"Bad.__init__ must call super\(\).__init__\(\)"):
        Bad()
    with pytest.raises(NotImplementedError, match="must define construct"):
        Cell()(sf.Tensor([1.0]))


def test_eager_graph_mode_and_kwargs_agree():
    net, x = Net(), sf.Tensor(np.ones((3, 4), np.float32))
    eager, doubled = net(x).asnumpy(), net(x, double=True).asnumpy()
    np.testing.assert_allclose(doubled, 2 * eager, rtol=1e-6)
    sf.set_context(mode=sf.GRAPH_MODE)
    np.testing.assert_allclose(net(x).asnumpy(), eager, rtol=1e-6)
    np.testing.assert_allclose(net(x, double=True).asnumpy(), doubled, rtol=1e-6)
    assert net._graph_fn.cache_size() == 2


def test_scopes_in_the_ir_are_cell_paths():
    net, x = Net(), sf.Tensor(np.ones((3, 4), np.float32))
    g = sf.jit(net).trace(x).graph
    scopes = {n.op: n.scope for n in g.nodes}
    assert scopes["matmul"] in ("Net.block.fc", "Net.head")
    assert [n.scope for n in g.nodes if n.op == "matmul"] == ["Net.block.fc", "Net.head"]
    assert [n.scope for n in g.nodes if n.op == "maximum"] == ["Net.block"]
    assert "%block.fc.weight: f32[4,4]" in str(g)


def test_cell_repr_lists_children():
    r = repr(Net())
    assert r.startswith("Net<") and "(block): Block<" in r and "(fc): Fc<>" in r and "(head): Fc<>" in r
