"""Dataset pipeline: ops, sizes, iterators, seeding, prefetch thread (errors, early stop), transforms."""
import gc
import threading
import time

import numpy as np
import pytest

import sporeflow as sf
import sporeflow.dataset as ds
from sporeflow import Tensor
from sporeflow.dataset import transforms, vision
from sporeflow.errors import DatasetError
from sporeflow.runtime.dataset import config as ds_config


@pytest.fixture(autouse=True)
def _fresh_seed():
    ds_config._STATE["seed"] = None
    sf.set_seed(0)
    yield
    ds_config._STATE["seed"] = None


def rows(d, **kw):
    return [tuple(np.asarray(a).tolist() for a in r) for r in d.create_tuple_iterator(output_numpy=True, **kw)]


def col(d, i=0):
    return [r[i] for r in rows(d, num_epochs=1)]


def test_numpy_slices_order_sizes_and_columns():
    d = ds.NumpySlicesDataset((np.arange(10), np.arange(10) * 2.0), ["a", "b"], shuffle=False)
    assert d.get_col_names() == ["a", "b"] and d.get_dataset_size() == 10
    assert col(d) == list(range(10))
    assert ds.NumpySlicesDataset(np.arange(10)).get_col_names() == ["column_0"]
    assert ds.NumpySlicesDataset({"x": np.ones((3, 2)), "y": [1, 2, 3]}).get_col_names() == ["x", "y"]
    # MindSpore's observed sizes
    assert d.batch(4).get_dataset_size() == 3
    assert d.batch(4, drop_remainder=True).get_dataset_size() == 2
    assert d.batch(4).repeat(2).get_dataset_size() == 6
    assert d.take(3).get_dataset_size() == 3 and d.skip(7).get_dataset_size() == 3
    assert col(d.skip(7)) == [7, 8, 9] and col(d.take(2)) == [0, 1]
    with pytest.raises(DatasetError, match="column 'y' has 2 rows but column 'x' has 3"):
        ds.NumpySlicesDataset({"x": np.ones((3, 2)), "y": [1, 2]})


def test_batch_stacks_and_iterators_yield_tensors():
    d = ds.NumpySlicesDataset((np.arange(10, dtype=np.float32).reshape(5, 2), np.arange(5, dtype=np.int32)),
                              ["x", "y"], shuffle=False).batch(2)
    batches = list(d)
    assert len(batches) == 3 and isinstance(batches[0], list)
    x, y = batches[0]
    assert isinstance(x, Tensor) and x.shape == (2, 2) and x.dtype is sf.float32 and y.dtype is sf.int32
    assert batches[2][0].shape == (1, 2)
    dicts = list(d.create_dict_iterator(num_epochs=1, output_numpy=True))
    assert set(dicts[0]) == {"x", "y"} and dicts[1]["y"].tolist() == [2, 3]
    assert d.output_shapes() == [[2, 2], [2]] and d.output_types() == [np.float32, np.int32]
    only_y = list(d.create_tuple_iterator(columns=["y"], num_epochs=1, output_numpy=True))
    assert [b[0].tolist() for b in only_y] == [[0, 1], [2, 3], [4]]


def test_iterator_epochs():
    d = ds.NumpySlicesDataset(np.arange(4), shuffle=False)
    it = d.create_tuple_iterator(num_epochs=2, output_numpy=True)
    assert [int(r[0]) for r in it] == [0, 1, 2, 3]
    assert [int(r[0]) for r in it] == [0, 1, 2, 3]
    assert list(it) == []  # num_epochs exhausted
    inf = d.create_tuple_iterator(output_numpy=True)  # num_epochs=-1
    for _ in range(3):
        assert len(list(inf)) == 4
    inf.stop()


def test_map_columns():
    d = ds.NumpySlicesDataset((np.arange(3), np.arange(3) + 10, np.arange(3) + 100), ["a", "b", "c"], shuffle=False)
    m = d.map(transforms.Duplicate(), input_columns=["b"], output_columns=["b1", "b2"])
    assert m.get_col_names() == ["a", "b1", "b2", "c"]
    assert rows(m, num_epochs=1)[1] == (1, 11, 11, 101)
    two = d.map(lambda a, c: a + c, input_columns=["a", "c"], output_columns=["s"])
    assert two.get_col_names() == ["s", "b"] and col(two) == [100, 102, 104]
    chained = d.map([lambda a: a * 2, lambda a: a + 1])  # first column by default
    assert col(chained) == [1, 3, 5]
    with pytest.raises(ValueError, match="input column 'zz'"):
        d.map(lambda x: x, input_columns="zz")
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['colum_order'\]"):
        d.map(lambda x: x, colum_order=["a"])
    reordered = d.map(lambda a: a * 2, input_columns="a", column_order=["c", "a"])
    assert reordered.get_col_names() == ["c", "a"] and rows(reordered, num_epochs=1)[1] == (101, 2)
    with pytest.raises(TypeError, match="unexpected keyword"):
        d.batch(2, pad_infos=None)
    bad = d.map(lambda a: (a, a), input_columns=["a"])
    with pytest.raises(DatasetError, match="returned 2 column"):
        list(bad)


def test_generator_sources():
    class RA:
        def __getitem__(self, i):
            return np.array([i, i]), np.array(i * 10)

        def __len__(self):
            return 6

    d = ds.GeneratorDataset(RA(), ["x", "y"], shuffle=False)
    assert d.get_dataset_size() == 6 and rows(d, num_epochs=1)[2] == ([2, 2], 20)

    def gen():
        for i in range(5):
            yield (np.array(i),)

    g = ds.GeneratorDataset(gen, "v")
    assert g.get_dataset_size() == 5 and col(g) == [0, 1, 2, 3, 4] and col(g) == [0, 1, 2, 3, 4]
    assert col(ds.GeneratorDataset(gen, ["v"], num_samples=2)) == [0, 1]
    assert col(ds.GeneratorDataset(RA(), ["x", "y"], shuffle=False, num_shards=2, shard_id=1), 1) == [10, 30, 50]
    assert col(ds.GeneratorDataset([[1, 2], [3, 4]], ["v"], shuffle=False)) == [[1, 2], [3, 4]]
    with pytest.raises(ValueError, match="shuffle=True needs a random-accessible"):
        ds.GeneratorDataset(gen, ["v"], shuffle=True)
    with pytest.raises(ValueError, match="column_names is required"):
        ds.GeneratorDataset(gen)
    once = ds.GeneratorDataset(gen(), ["v"])
    assert col(once) == [0, 1, 2, 3, 4]
    with pytest.raises(DatasetError, match="one-shot iterator"):
        list(once)


def test_bad_rows_are_named():
    def wrong_count():
        yield np.array(1), np.array(2)
        yield (np.array(3),)

    with pytest.raises(DatasetError, match=r"row 1 has 1 column\(s\) but column_names has 2"):
        list(ds.GeneratorDataset(wrong_count, ["a", "b"]))

    def ragged():
        yield (np.zeros(2),)
        yield ([[1, 2], [3]],)

    with pytest.raises(DatasetError, match="row 1, column 'img'"):
        list(ds.GeneratorDataset(ragged, ["img"]))

    def shapes():
        for i in range(6):
            yield np.zeros((4, 4) if i != 4 else (4, 5), np.float32), np.array(i)

    d = ds.GeneratorDataset(shapes, ["image", "label"]).batch(3)
    with pytest.raises(DatasetError, match=r"column 'image' of row 4 has shape \(4, 5\), but row 3"):
        list(d)
    norm = ds.NumpySlicesDataset(np.zeros((3, 2, 2, 4), np.float32), ["image"], shuffle=False)
    with pytest.raises(DatasetError, match=r"row 0, column\(s\) \['image'\].*4 channel"):
        list(norm.map(vision.Normalize([0.5, 0.5, 0.5], [1, 1, 1])))


def test_errors_propagate_from_the_prefetch_thread_with_the_original_message():
    class Boom(Exception):
        pass

    def gen():
        for i in range(100):
            if i == 7:
                raise Boom("source broke at 7")
            yield (np.array(i),)

    seen = []
    with pytest.raises(Boom, match="source broke at 7"):
        for r in ds.GeneratorDataset(gen, ["v"]).create_tuple_iterator(num_epochs=1, output_numpy=True):
            seen.append(int(r[0]))
    assert seen == list(range(7))

    def bad_op(x):
        if int(x) == 3:
            raise KeyError("op failed")
        return x

    d = ds.NumpySlicesDataset(np.arange(6), ["v"], shuffle=False).map(bad_op)
    with pytest.raises(KeyError, match="op failed") as e:
        list(d)
    assert any("bad_op on row 3" in n for n in e.value.__notes__)


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "sporeflow-dataset-prefetch"]


def _wait_no_prefetch_threads(before):
    deadline = time.time() + 5
    while time.time() < deadline and len(_prefetch_threads()) > before:
        time.sleep(0.02)
    return len(_prefetch_threads()) <= before


def test_early_stop_does_not_hang():
    before = len(_prefetch_threads())

    def endless():
        i = 0
        while True:
            yield (np.array(i),)
            i += 1

    d = ds.GeneratorDataset(endless, ["v"]).batch(2)
    it = d.create_tuple_iterator(output_numpy=True)
    first = [next(it)[0].tolist() for _ in range(3)]
    assert first == [[0, 1], [2, 3], [4, 5]]
    it.stop()
    assert _wait_no_prefetch_threads(before)
    for k, _ in enumerate(d):  # break out of a for loop; dropping the iterator stops the thread
        if k == 2:
            break
    gc.collect()
    assert _wait_no_prefetch_threads(before)


def test_shuffle_is_seeded_reproducible_and_new_each_epoch():
    def order(seed_fn, seed):
        seed_fn(seed)
        d = ds.NumpySlicesDataset(np.arange(20))  # shuffled by default (random-accessible)
        return col(d), col(d)

    a1, a2 = order(sf.set_seed, 5)
    b1, b2 = order(sf.set_seed, 5)
    assert a1 == b1 and a2 == b2  # reproducible
    assert sorted(a1) == list(range(20)) and a1 != list(range(20))
    assert a1 != a2  # each epoch its own permutation
    c1, _ = order(ds.config.set_seed, 6)
    assert c1 != a1 and ds.config.get_seed() == 6
    # the buffered shuffle
    ds.config.set_seed(1)
    s = ds.NumpySlicesDataset(np.arange(30), shuffle=False).shuffle(8)
    x, y = col(s), col(s)
    assert sorted(x) == list(range(30)) and x != list(range(30)) and x != y
    ds.config.set_seed(1)
    s2 = ds.NumpySlicesDataset(np.arange(30), shuffle=False).shuffle(8)
    assert col(s2) == x
    # set_epoch replays an epoch's order (resuming training)
    assert col(s2.set_epoch(1)) == y
    with pytest.raises(ValueError, match="larger than 1"):
        s.shuffle(1)


def test_repeat_zip_concat_project_rename():
    d = ds.NumpySlicesDataset(np.arange(3), ["a"], shuffle=False)
    assert col(d.repeat(2)) == [0, 1, 2, 0, 1, 2]
    e = ds.NumpySlicesDataset(np.arange(5) * 10, ["b"], shuffle=False)
    z = d.zip(e)
    assert z.get_col_names() == ["a", "b"] and z.get_dataset_size() == 3 and rows(z, num_epochs=1)[2] == (2, 20)
    assert col(d + d.rename("a", "a")) == [0, 1, 2, 0, 1, 2]
    assert z.project(["b"]).get_col_names() == ["b"] and col(z.project("b")) == [0, 10, 20]
    assert z.rename(["a"], ["c"]).get_col_names() == ["c", "b"]
    with pytest.raises(ValueError, match="share column names"):
        d.zip(d)
    with pytest.raises(ValueError, match="column names differ"):
        d.concat(e)


def test_per_batch_map_and_callable_batch_size():
    d = ds.NumpySlicesDataset(np.arange(7), ["v"], shuffle=False)
    b = d.batch(3, per_batch_map=lambda v, info: ([x * 0 + info.get_batch_num() for x in v],))
    assert [r[0] for r in rows(b, num_epochs=1)] == [[0, 0, 0], [1, 1, 1], [2]]
    growing = d.batch(lambda info: info.get_batch_num() + 1)
    assert [len(r[0]) for r in rows(growing, num_epochs=1)] == [1, 2, 3, 1]


def test_vision_transforms():
    img = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    r = vision.Rescale(1 / 255.0, -0.5)(img)
    assert r.dtype == np.float32 and np.allclose(r, img / 255.0 - 0.5)
    n = vision.Normalize([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])(img)
    assert np.allclose(n[..., 2], (img[..., 2] - 3.0) / 2.0)
    chw = vision.HWC2CHW()(img)
    assert chw.shape == (3, 2, 2) and chw[1, 0, 1] == img[0, 1, 1]
    assert np.allclose(vision.Normalize([1.0, 2.0, 3.0], [1, 1, 1], is_hwc=False)(chw)[2], chw[2] - 3.0)
    # bilinear with half-pixel centres: weights along an axis for 2 -> 4 are [0, .25, .75, 1]
    small = np.array([[0, 10], [20, 30]], np.float32)
    w = np.array([0, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(vision.Resize((4, 4), vision.Inter.LINEAR)(small), 20 * w[:, None] + 10 * w[None, :])
    assert vision.Inter.BILINEAR is vision.Inter.LINEAR
    np.testing.assert_array_equal(vision.Resize((4, 4), vision.Inter.NEAREST)(small),
                                  small[[0, 0, 1, 1]][:, [0, 0, 1, 1]])
    assert vision.Resize(4)(np.zeros((8, 16, 1), np.uint8)).shape == (4, 8, 1)
    up = vision.Resize((3, 3))(np.array([[0, 255], [255, 0]], np.uint8))
    assert up.dtype == np.uint8 and up[1, 1] == 128  # 127.5 rounded half up
    with pytest.raises(NotImplementedError, match="CUBIC"):
        vision.Resize(4, vision.Inter.CUBIC)
    flip = vision.RandomHorizontalFlip(1.0)(img)
    np.testing.assert_array_equal(flip, img[:, ::-1])
    np.testing.assert_array_equal(vision.RandomHorizontalFlip(0.0)(img), img)
    crop = vision.RandomCrop(3, padding=1)(img)
    assert crop.shape == (3, 3, 3)
    with pytest.raises(DatasetError, match="larger than"):
        vision.RandomCrop(5)(img)
    assert vision.RandomCrop(5, pad_if_needed=True)(img).shape == (5, 5, 3)
    tt = vision.ToTensor()(img)
    assert tt.shape == (3, 2, 2) and tt.dtype == np.float32 and np.allclose(tt[2, 1, 0], img[1, 0, 2] / 255)
    np.testing.assert_array_equal(vision.ToTensor()._batched(np.stack([img, img])), np.stack([tt, tt]))
    assert vision.ToTensor()(img[..., 0]).shape == (1, 2, 2)


def test_random_transforms_in_a_pipeline_are_reproducible():
    one = np.arange(6 * 6, dtype=np.uint8).reshape(6, 6, 1)
    imgs = np.stack([one] * 8)  # identical rows: any difference comes from the augmentation

    def run():
        ds.config.set_seed(3)
        d = ds.NumpySlicesDataset(imgs, ["image"], shuffle=False)
        d = d.map([vision.RandomCrop(4, padding=1), vision.RandomHorizontalFlip()], "image")
        it = d.create_tuple_iterator(num_epochs=2, output_numpy=True)
        return [r[0] for r in it], [r[0] for r in it]

    (a1, a2), (b1, b2) = run(), run()
    assert all(np.array_equal(x, y) for x, y in zip(a1 + a2, b1 + b2, strict=True))  # same seed, same augmentations
    assert len({x.tobytes() for x in a1}) > 1  # rows differ from each other
    assert any(not np.array_equal(x, y) for x, y in zip(a1, a2, strict=True))  # epoch 2 differs from epoch 1


def test_transforms():
    assert transforms.TypeCast(sf.int32)(np.array([1.7, -2.2])).dtype == np.int32
    assert transforms.TypeCast(np.float16)(np.array([1])).dtype == np.float16
    assert transforms.TypeCast(np.uint16)(np.array([1])).dtype == np.uint16  # numpy dtypes kept as given
    with pytest.raises(NotImplementedError, match="bfloat16"):
        transforms.TypeCast(sf.bfloat16)
    oh = transforms.OneHot(4)(np.array([1, 3], np.int32))
    np.testing.assert_array_equal(oh, [[0, 1, 0, 0], [0, 0, 0, 1]])
    assert oh.dtype == np.int32
    np.testing.assert_allclose(transforms.OneHot(4, 0.2)(np.array(0)), [0.85, 0.05, 0.05, 0.05])
    with pytest.raises(DatasetError, match="outside"):
        transforms.OneHot(3)(np.array([3]))
    c = transforms.Compose([vision.Rescale(2.0, 0.0), transforms.TypeCast(sf.int64)])
    assert c(np.array([1, 2], np.uint8)).tolist() == [2, 4]
    d = ds.NumpySlicesDataset((np.zeros((4, 3, 3, 1), np.uint8), np.arange(4, dtype=np.int32)), ["image", "label"],
                              shuffle=False)
    d = d.map([vision.Rescale(1 / 255, 0), vision.HWC2CHW()], "image").map(transforms.OneHot(4), "label").batch(2)
    x, y = next(iter(d))
    assert x.shape == (2, 1, 3, 3) and x.dtype is sf.float32 and y.shape == (2, 4)


def test_batch_fast_path_equals_row_by_row_path():
    x = np.arange(11 * 3, dtype=np.float32).reshape(11, 3)
    y = np.arange(11, dtype=np.int32)
    for drop in (False, True):
        ds.config.set_seed(4)
        fast = ds.NumpySlicesDataset((x, y), ["x", "y"]).batch(4, drop_remainder=drop)
        ds.config.set_seed(4)
        slow = ds.NumpySlicesDataset((x, y), ["x", "y"]).map(lambda v: v, "x").batch(4, drop_remainder=drop)
        a = list(fast.create_tuple_iterator(num_epochs=1, output_numpy=True))
        b = list(slow.create_tuple_iterator(num_epochs=1, output_numpy=True))
        assert len(a) == len(b) == (2 if drop else 3)
        for (ax, ay), (bx, by) in zip(a, b, strict=True):
            assert ax.dtype == bx.dtype and ay.dtype == by.dtype
            np.testing.assert_array_equal(ax, bx)
            np.testing.assert_array_equal(ay, by)


def test_split():
    d = ds.NumpySlicesDataset(np.arange(10), ["v"], shuffle=False)
    a, b = d.split([7, 3], randomize=False)
    assert col(a) == list(range(7)) and col(b) == [7, 8, 9]
    ds.config.set_seed(2)
    x, y, z = d.split([0.5, 0.3, 0.2])
    parts = [col(x), col(y), col(z)]
    assert [len(p) for p in parts] == [5, 3, 2] and sorted(sum(parts, [])) == list(range(10))
    assert parts[0] != list(range(5))
    assert [r[0].tolist() for r in x.batch(5).create_tuple_iterator(num_epochs=1, output_numpy=True)] == [parts[0]]
    with pytest.raises(ValueError, match="sum to the dataset size"):
        d.split([3, 3])


from hypothesis import given, strategies as st  # noqa: E402


@given(n=st.integers(1, 12), ops=st.lists(st.tuples(st.sampled_from(["take", "skip", "repeat", "batch"]),
                                                     st.integers(1, 4), st.booleans()), max_size=4))
def test_pipeline_matches_a_list_model(n, ops):
    """Sizes and contents of take/skip/repeat/batch chains equal the same chain on Python lists.
    Batching items of different sizes fails when that batch is computed (ERR in the model)."""
    ERR = "ERR"
    d = ds.NumpySlicesDataset(np.arange(n), ["v"], shuffle=False)
    model = [[i] for i in range(n)]  # each item: the list of source values it holds
    raised = False  # an ERR item that is computed but not yielded (skipped, or dropped remainder)
    for op, k, drop in ops:
        if op == "take":
            d, model = d.take(k), model[:k]
        elif op == "skip":
            d, model, raised = d.skip(k), model[k:], raised or ERR in model[:k]
        elif op == "repeat":
            d, model = d.repeat(k), model * k
        else:
            d = d.batch(k, drop_remainder=drop)
            groups = [model[i:i + k] for i in range(0, len(model), k)]
            if drop and groups and len(groups[-1]) < k:
                raised = raised or ERR in groups.pop()
            model = [ERR if ERR in g or len({len(x) for x in g}) > 1 else sum(g, []) for g in groups]
    assert d.get_dataset_size() == len(model)
    if raised or ERR in model:
        with pytest.raises(DatasetError, match="rows of a column must have one shape"):
            list(d.create_tuple_iterator(num_epochs=1, output_numpy=True))
        return
    got = [np.asarray(r[0]).reshape(-1).tolist() for r in d.create_tuple_iterator(num_epochs=1, output_numpy=True)]
    assert got == model


def _bilinear_loop(img, h2, w2):
    """Independent reference: OpenCV's half-pixel bilinear sampling, one output pixel at a time."""
    h, w = img.shape
    out = np.zeros((h2, w2))
    for i in range(h2):
        for j in range(w2):
            sy = min(max((i + 0.5) * h / h2 - 0.5, 0.0), h - 1)
            sx = min(max((j + 0.5) * w / w2 - 0.5, 0.0), w - 1)
            y0, x0 = int(sy), int(sx)
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            fy, fx = sy - y0, sx - x0
            out[i, j] = ((1 - fy) * ((1 - fx) * img[y0, x0] + fx * img[y0, x1]) +
                         fy * ((1 - fx) * img[y1, x0] + fx * img[y1, x1]))
    return out


@given(h=st.integers(1, 7), w=st.integers(1, 7), h2=st.integers(1, 9), w2=st.integers(1, 9),
       seed=st.integers(0, 1000))
def test_resize_bilinear_against_loop(h, w, h2, w2, seed):
    img = np.random.default_rng(seed).uniform(0, 10, (h, w)).astype(np.float32)
    got = vision.Resize((h2, w2))(img)
    if (h2, w2) == (h, w):
        np.testing.assert_array_equal(got, img)
    else:
        np.testing.assert_allclose(got, _bilinear_loop(img.astype(np.float64), h2, w2), rtol=1e-5, atol=1e-5)
    hwc = vision.Resize((h2, w2))(np.stack([img, img * 2], -1))
    np.testing.assert_allclose(hwc[..., 1], 2 * got, rtol=1e-5, atol=1e-5)
    for mode in (vision.Inter.LINEAR, vision.Inter.NEAREST):  # the batched form equals per image, bit for bit
        batch = np.stack([img, img + 1, img * 3])
        op = vision.Resize((h2, w2), mode)
        np.testing.assert_array_equal(op._batched(batch), np.stack([op(x) for x in batch]))
        u8 = (batch * 20).astype(np.uint8)[..., None]
        np.testing.assert_array_equal(op._batched(u8), np.stack([op(x) for x in u8]))


def test_batched_map_fast_path_equals_row_path_and_names_bad_rows():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (13, 5, 4, 3)).astype(np.uint8)
    labels = rng.integers(0, 4, 13).astype(np.uint32)
    ops = [vision.Resize((7, 3)), vision.Rescale(1 / 255, 0), vision.Normalize([0.1, 0.2, 0.3], [0.5, 0.6, 0.7]),
           vision.HWC2CHW()]

    def pipe(force_rows: bool, label_ops):
        ds.config.set_seed(9)
        d = ds.NumpySlicesDataset((imgs, labels), ["image", "label"])
        d = d.map(transforms.Compose(ops), "image").map(label_ops, "label")
        if force_rows:  # an operation without a batched form sends the pipeline down the row path
            d = d.map(lambda x: x, "image")
        return d.batch(4)

    cast_onehot = [transforms.TypeCast(sf.int32), transforms.OneHot(4)]
    assert pipe(False, cast_onehot)._fast_chain() is not None and pipe(True, cast_onehot)._fast_chain() is None
    fast = list(pipe(False, cast_onehot).create_tuple_iterator(num_epochs=1, output_numpy=True))
    slow = list(pipe(True, cast_onehot).create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert len(fast) == len(slow) == 4
    for (fx, fy), (sx, sy) in zip(fast, slow, strict=True):
        assert fx.dtype == sx.dtype == np.float32 and fy.dtype == sy.dtype == np.int32
        np.testing.assert_array_equal(fx, sx)
        np.testing.assert_array_equal(fy, sy)
    assert fast[0][0].shape == (4, 3, 7, 3) and fast[3][1].shape == (1, 4)
    # a label out of range: the failing batch is replayed row by row so the error names the row
    bad = labels.copy()
    bad[6] = 7
    d = ds.NumpySlicesDataset((imgs, bad), ["image", "label"], shuffle=False).map(transforms.OneHot(4), "label")
    with pytest.raises(DatasetError, match=r"row 6, column\(s\) \['label'\].*label 7"):
        list(d.batch(4))
