"""Metrics against hand computations (values worked out in the comments)."""
import numpy as np
import pytest

from sporeflow import Tensor
from sporeflow import train
from sporeflow.train import (F1, MAE, MSE, Accuracy, ConfusionMatrix, Fbeta, Loss, Metric, Precision, Recall,
                             Top1CategoricalAccuracy, Top5CategoricalAccuracy, TopKCategoricalAccuracy,
                             get_metric_fn, get_metrics, names, rearrange_inputs)

# 4 samples, 3 classes; argmax = [1, 0, 2, 2]; labels = [1, 0, 1, 2] -> 3 correct
Y_PRED = np.array([[0.1, 0.7, 0.2], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.1, 0.2, 0.7]], np.float32)
Y = np.array([1, 0, 1, 2], np.int32)


def test_accuracy_classification_tensor_numpy_onehot():
    m = Accuracy()
    m.update(Tensor(Y_PRED), Tensor(Y))
    assert m.eval() == pytest.approx(0.75)
    m.update(Y_PRED[:2], np.eye(3)[[2, 2]])  # one-hot labels; argmax 1,0 vs 2,2 -> both wrong
    assert m.eval() == pytest.approx(3 / 6)
    assert isinstance(m.eval(), np.float64)
    m.clear()
    with pytest.raises(RuntimeError, match="number of samples is 0"):
        m.eval()
    assert Accuracy()(Y_PRED, Y) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="class number changed"):
        m.update(Y_PRED, Y)
        m.update(np.ones((2, 4)), np.array([0, 1]))
    with pytest.raises(ValueError, match="2 inputs"):
        Accuracy().update(Y_PRED)
    with pytest.raises(TypeError):
        Accuracy().update("abc", Y)


def test_accuracy_multilabel_exact_row_match():
    y_pred = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    y = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0]])
    assert Accuracy("multilabel")(y_pred, y) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="only 0 and 1"):
        Accuracy("multilabel")(y_pred * 0.5, y)


def test_loss_averages_batch_means_unweighted():
    m = Loss()
    m.update(Tensor(np.array(2.0, np.float32)))
    m.update(np.array([1.0, 3.0, 5.0, 7.0]))  # batch mean 4
    assert m.eval() == pytest.approx(3.0)  # (2 + 4) / 2, not weighted by size
    with pytest.raises(ValueError, match="0-d or 1-d"):
        m.update(np.ones((2, 2)))


def test_mae_mse_divide_by_samples():
    y_pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([1.5, 2.0, 2.0, 6.0])  # reshaped to (2, 2): errors .5, 0, 1, 2
    # explicitly: sum |e| = 3.5 over N = 4 samples of y (MindSpore divides by y.shape[0])
    assert MAE()(y_pred, y) == pytest.approx(3.5 / 4)
    assert MSE()(y_pred, y) == pytest.approx((0.25 + 0 + 1 + 4) / 4)
    m = MSE()
    m.update(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    m.update(np.array([3.0]), np.array([1.0]))
    assert m.eval() == pytest.approx((1 + 4 + 4) / 3)


def test_precision_recall_f1_per_class():
    # classes: predicted [1,0,2,2], true [1,0,1,2]
    # class 0: TP1 pred1 true1; class 1: TP1 pred1 true2; class 2: TP1 pred2 true1
    p, r, f = Precision()(Y_PRED, Y), Recall()(Y_PRED, Y), F1()(Y_PRED, Y)
    np.testing.assert_allclose(p, [1.0, 1.0, 0.5])
    np.testing.assert_allclose(r, [1.0, 0.5, 1.0])
    np.testing.assert_allclose(f, [1.0, 2 / 3, 2 / 3])
    m = Precision()
    m.update(Y_PRED, Y)
    assert m.eval(average=True) == pytest.approx(2.5 / 3)
    fb = Fbeta(2.0)
    fb.update(Y_PRED, Y)  # class 1: 5*1 / (4*2 + 1) = 5/9
    np.testing.assert_allclose(fb.eval(), [1.0, 5 / 9, 5 * 1 / (4 * 1 + 2)])
    with pytest.raises(TypeError):
        m.eval(average=1)


def test_precision_recall_multilabel_per_sample():
    y_pred = np.array([[1, 0], [1, 1]])
    y = np.array([[1, 1], [0, 1]])
    # per sample: sample0 TP=1, predicted 1, actual 2; sample1 TP=1, predicted 2, actual 1
    np.testing.assert_allclose(Precision("multilabel")(y_pred, y), [1.0, 0.5])
    np.testing.assert_allclose(Recall("multilabel")(y_pred, y), [0.5, 1.0])
    m = Recall("multilabel")
    m.update(y_pred, y)
    m.update(np.array([[0, 1]]), np.array([[0, 1]]))
    np.testing.assert_allclose(m.eval(), [0.5, 1.0, 1.0])
    assert m.eval(True) == pytest.approx(2.5 / 3)


def test_topk():
    # sample scores ranks: s0 label 1 is top1; s1 label 0 top1; s2 label 1 is 2nd; s3 label 2 top1
    assert Top1CategoricalAccuracy()(Y_PRED, Y) == pytest.approx(0.75)
    assert TopKCategoricalAccuracy(2)(Y_PRED, Y) == pytest.approx(1.0)
    y_pred = np.tile(np.arange(6, dtype=np.float32), (2, 1))  # ranking 5,4,3,2,1,0
    assert Top5CategoricalAccuracy()(y_pred, np.array([1, 0])) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        TopKCategoricalAccuracy(0)


def test_confusion_matrix_and_normalizations():
    # rows true, cols predicted: (1,1) (0,0) (1,2) (2,2)
    cm = ConfusionMatrix(3)(Y_PRED, Y)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    np.testing.assert_allclose(ConfusionMatrix(3, "target")(Y_PRED, Y), [[1, 0, 0], [0, .5, .5], [0, 0, 1]])
    np.testing.assert_allclose(ConfusionMatrix(3, "prediction")(Y_PRED, Y), [[1, 0, 0], [0, 1, .5], [0, 0, .5]])
    np.testing.assert_allclose(ConfusionMatrix(3, "all")(Y_PRED, Y), np.array(cm) / 4)
    # same-rank float predictions are thresholded
    binary = ConfusionMatrix(2, threshold=0.6)(np.array([0.7, 0.5, 0.9]), np.array([1, 1, 0]))
    np.testing.assert_array_equal(binary, [[0, 1], [1, 1]])
    with pytest.raises(ValueError, match="outside"):
        ConfusionMatrix(2)(Y_PRED, Y)


def test_set_indexes_and_rearrange_inputs():
    # Model's eval network gives (loss, logits, label); indexes pick what each metric sees
    loss = np.array(0.3)
    acc = Accuracy().set_indexes([1, 2])
    acc.update(loss, Y_PRED, Y)
    assert acc.eval() == pytest.approx(0.75)
    lm = Loss().set_indexes([0])
    lm.update(loss, Y_PRED, Y)
    assert lm.eval() == pytest.approx(0.3)
    with pytest.raises(ValueError, match="list of non-negative ints"):
        Accuracy().set_indexes((0, 1))

    class Custom(Metric):
        def clear(self):
            self.seen = None

        @rearrange_inputs
        def update(self, *inputs):
            self.seen = inputs

        def eval(self):
            return self.seen

    c = Custom().set_indexes([2, 0])
    assert c(10, 20, 30) == (30, 10)
    assert Custom()(10, 20) == (10, 20)


def test_factory_names():
    assert {"accuracy", "acc", "loss", "F1", "precision", "recall", "mae", "mse", "topk", "top_1_accuracy",
            "top_5_accuracy", "confusion_matrix"} == set(names())
    assert isinstance(get_metric_fn("acc"), Accuracy)
    assert get_metric_fn("topk", 3).k == 3
    with pytest.raises(KeyError, match="did you mean 'F1'"):
        get_metric_fn("f1")
    with pytest.raises(NotImplementedError, match="not implemented in sporeflow"):
        get_metric_fn("dice")
    ms = get_metrics({"accuracy", "loss"})
    assert set(ms) == {"accuracy", "loss"} and isinstance(ms["loss"], Loss)
    custom = {"top": Top1CategoricalAccuracy()}
    assert get_metrics(custom) == custom
    with pytest.raises(TypeError):
        get_metrics({"a": 3})
    assert train.metrics.get_metric_fn is get_metric_fn


from hypothesis import given, strategies as st  # noqa: E402


@given(n=st.integers(1, 20), c=st.integers(2, 5), seed=st.integers(0, 10 ** 6), split=st.integers(0, 20))
def test_classification_metrics_against_loops(n, c, seed, split):
    """Accumulated over two updates, the metrics equal per-sample loop computations."""
    rng = np.random.default_rng(seed)
    y_pred = rng.normal(size=(n, c))
    y = rng.integers(0, c, n)
    split = min(split, n)
    pred = y_pred.argmax(1)
    metrics = {"acc": Accuracy(), "p": Precision(), "r": Recall(), "f": F1(), "top2": TopKCategoricalAccuracy(2),
               "cm": ConfusionMatrix(c)}
    for m in metrics.values():
        for a, b in ((0, split), (split, n)):
            if b > a:
                m.update(Tensor(y_pred[a:b].astype(np.float32)), y[a:b])
    assert metrics["acc"].eval() == pytest.approx(sum(pred[i] == y[i] for i in range(n)) / n)
    for k in range(c):
        tp = sum(1 for i in range(n) if pred[i] == k and y[i] == k)
        pp = sum(1 for i in range(n) if pred[i] == k)
        ap = sum(1 for i in range(n) if y[i] == k)
        assert metrics["p"].eval()[k] == pytest.approx(tp / pp if pp else 0.0)
        assert metrics["r"].eval()[k] == pytest.approx(tp / ap if ap else 0.0)
        assert metrics["f"].eval()[k] == pytest.approx(2 * tp / (pp + ap) if pp + ap else 0.0)
        for j in range(c):
            assert metrics["cm"].eval()[k, j] == sum(1 for i in range(n) if y[i] == k and pred[i] == j)
    top2 = sum(1 for i in range(n) if y_pred[i, y[i]] >= sorted(y_pred[i])[-2]) / n
    assert metrics["top2"].eval() == pytest.approx(top2)
