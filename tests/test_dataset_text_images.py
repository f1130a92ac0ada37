"""ImageFolderDataset + vision.Decode (on image folders the tests write with Pillow),
module-level zip/concat, and the dataset.text basics."""
import io
import os

import numpy as np
import pytest

import sporeflow.dataset as ds
from sporeflow.dataset import text, transforms, vision
from sporeflow.errors import DatasetError

PIL = pytest.importorskip("PIL.Image", reason="Pillow (the 'image' extra) is not installed")


def _write_folder(root, rng):
    """Two classes, PNG (lossless, so pixels are checked exactly) plus one stray text file."""
    images = {}
    for cls, n in (("cat", 3), ("dog", 2)):
        os.makedirs(root / cls)
        for i in range(n):
            a = rng.integers(0, 256, (5 + i, 7, 3), dtype=np.uint8)
            path = root / cls / f"{i}.png"
            PIL.fromarray(a).save(path)
            images[str(path)] = (a, cls)
    (root / "cat" / "notes.txt").write_text("not an image")
    return images


def test_image_folder_labels_bytes_and_decode(tmp_path, rng):
    images = _write_folder(tmp_path, rng)
    d = ds.ImageFolderDataset(str(tmp_path), shuffle=False)
    assert d.get_dataset_size() == 5 and d.get_class_indexing() == {"cat": 0, "dog": 1}
    rows = list(d.create_tuple_iterator(output_numpy=True))
    labels = [int(r[1]) for r in rows]
    assert labels == [0, 0, 0, 1, 1] and rows[0][1].dtype == np.uint32
    assert rows[0][0].dtype == np.uint8 and rows[0][0].ndim == 1  # raw file bytes
    decoded = d.map(vision.Decode(), "image")
    want = [a for a, _ in sorted(images.values(), key=lambda v: v[1])]
    got = [r[0] for r in decoded.create_tuple_iterator(output_numpy=True)]
    by_shape = sorted(want, key=lambda a: (a.shape, a.tobytes()))
    assert all(np.array_equal(g, w) for g, w in zip(sorted(got, key=lambda a: (a.shape, a.tobytes())), by_shape))
    same = ds.ImageFolderDataset(str(tmp_path), shuffle=False, decode=True)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(same.create_tuple_iterator(output_numpy=True),
                                                         decoded.create_tuple_iterator(output_numpy=True)))


def test_image_folder_options_and_errors(tmp_path, rng):
    _write_folder(tmp_path, rng)
    d = ds.ImageFolderDataset(str(tmp_path), class_indexing={"cat": 7, "dog": 3}, shuffle=False,
                              extensions=[".txt"])
    assert [int(r[1]) for r in d.create_tuple_iterator(output_numpy=True)] == [7]
    with pytest.raises(ValueError, match="class_indexing names folders \\['bird'\\]"):
        ds.ImageFolderDataset(str(tmp_path), class_indexing={"bird": 0})
    bad = d.map(vision.Decode(), "image")
    with pytest.raises(DatasetError, match="cannot decode the image"):
        list(bad.create_tuple_iterator(output_numpy=True))
    with pytest.raises(DatasetError, match="already decoded"):
        vision.Decode()(np.zeros((2, 2, 3), np.uint8))
    shard = ds.ImageFolderDataset(str(tmp_path), num_shards=2, shard_id=1, shuffle=False)
    assert shard.get_dataset_size() == 2


def test_decode_jpeg_bytes():
    a = np.full((8, 8, 3), 120, np.uint8)
    buf = io.BytesIO()
    PIL.fromarray(a).save(buf, format="JPEG", quality=95)
    out = vision.Decode()(np.frombuffer(buf.getvalue(), np.uint8))
    assert out.shape == (8, 8, 3) and np.abs(out.astype(int) - 120).max() <= 2


def test_module_level_zip_and_concat():
    a = ds.NumpySlicesDataset({"x": np.arange(3)}, shuffle=False)
    b = ds.NumpySlicesDataset({"y": np.arange(3) * 10}, shuffle=False)
    z = [(int(x), int(y)) for x, y in ds.zip((a, b)).create_tuple_iterator(output_numpy=True)]
    assert z == [(0, 0), (1, 10), (2, 20)]
    c = [int(r[0]) for r in ds.concat([a, a]).create_tuple_iterator(output_numpy=True)]
    assert c == [0, 1, 2, 0, 1, 2]
    with pytest.raises(TypeError, match="two or more datasets"):
        ds.zip(a)


def test_text_pipeline_tokenize_lookup_pad():
    lines = np.array(["the cat sat", "the dog  ran far", "a cat"])
    data = ds.NumpySlicesDataset({"text": lines}, shuffle=False).map(text.WhitespaceTokenizer(), "text")
    vocab = text.Vocab.from_dataset(data, "text", special_tokens=["<pad>", "<unk>"])
    assert list(vocab.vocab())[:4] == ["<pad>", "<unk>", "the", "cat"]  # by frequency, ties first-seen
    assert vocab.tokens_to_ids(["cat", "zebra"]) == [3, -1] and vocab.ids_to_tokens(2) == "the"
    ids = data.map(text.Lookup(vocab, "<unk>"), "text").map(text.Truncate(3), "text") \
        .map(transforms.PadEnd([3], 0), "text")
    rows = [r[0] for r in ids.create_tuple_iterator(output_numpy=True)]
    t = vocab.vocab()
    assert rows[1].tolist() == [t["the"], t["dog"], t["ran"]] and rows[2].tolist() == [t["a"], t["cat"], 0]
    assert rows[0].dtype == np.int32
    with pytest.raises(DatasetError, match="'zebra' is not in the vocab"):
        text.Lookup(vocab)(np.array(["zebra"]))


def test_text_tokenizers_offsets_and_numbers():
    toks, starts, ends = text.WhitespaceTokenizer(with_offsets=True)(np.array("héllo  wörld"))
    assert toks.tolist() == ["héllo", "wörld"] and starts.tolist() == [0, 8] and ends.tolist() == [6, 14]
    assert text.UnicodeCharTokenizer()(np.array("ab")).tolist() == ["a", "b"]
    assert text.PythonTokenizer(lambda s: s.split(","))(np.array("x,y")).tolist() == ["x", "y"]
    assert text.ToNumber(np.float32)(np.array(["1.5", "-2"])).tolist() == [1.5, -2.0]
    with pytest.raises(DatasetError, match="ToNumber"):
        text.ToNumber(np.int32)(np.array(["x"]))
    assert str(text.NormalizeUTF8("NFKC")(np.array("ﬁ"))) == "fi"
    assert transforms.PadEnd([4], "<pad>")(np.array(["a", "b"])).tolist() == ["a", "b", "<pad>", "<pad>"]
