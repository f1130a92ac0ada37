"""Checkpoints: format round trip (every dtype, bf16 bits included), integrity checks, atomic
writes (a crash or kill mid-write leaves the previous file), load_param_into_net reporting."""
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import Parameter, Tensor
from sporeflow.errors import CheckpointError
from sporeflow.frontend.cell import Cell
from sporeflow.ir import dtypes as D
from sporeflow.runtime import checkpoint as ck

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Net(Cell):
    def __init__(self, scale=1.0, wshape=(2, 3)):
        super().__init__()
        self.w = Parameter(Tensor(np.arange(np.prod(wshape), dtype=np.float32).reshape(wshape) * scale), name="w")
        self.b = Parameter(Tensor(np.full(3, scale, np.float32)), name="b")


class Outer(Cell):
    def __init__(self, scale=1.0):
        super().__init__()
        self.backbone = Net(scale)


def _all_dtype_tensors():
    rng = np.random.default_rng(0)
    out = {}
    for dt in D.ALL_DTYPES:
        if dt is D.bool_:
            arr = rng.integers(0, 2, (3, 4)).astype(bool)
        elif dt.is_int:
            info = np.iinfo(dt.storage)
            arr = np.array([[info.min, info.max, 0, 1], [2, 3, 5, 7], [9, 11, 13, 17]], dtype=dt.storage)
        elif dt is D.bfloat16:
            bits = np.array([[0x0000, 0x8000, 0x3F80, 0x7F80], [0xFF80, 0x7FC1, 0x0001, 0x4049],
                             [0xC2F7, 0x1234, 0xABCD, 0x7F7F]], dtype=np.uint16)
            out[dt.name] = Tensor(bits, D.bfloat16)
            continue
        else:
            arr = np.array([[0.0, -0.0, np.inf, -np.inf], [np.nan, 1e-3, -2.5, 3.25], [1e4, -1e-4, 7.0, 0.1]])
            arr = arr.astype(dt.storage)
        out[dt.name] = Tensor(arr, dt)
    out["scalar"] = Tensor(np.float32(2.5))
    out["empty"] = Tensor(np.zeros((0, 3), np.float32))
    return out


def _same_names(loaded, saved, fmt):
    """The .ckpt layouts keep the saved order; the safetensors package orders entries itself."""
    assert (sorted(loaded) == sorted(saved)) if fmt == "safetensors" else (list(loaded) == list(saved))


def _ext(fmt):
    return "safetensors" if fmt == "safetensors" else "ckpt"


@pytest.mark.parametrize("fmt", ["ckpt", "safetensors", "sporeflow"])
def test_round_trip_every_dtype_bit_exact(tmp_path, fmt):
    tensors = _all_dtype_tensors()
    path = str(tmp_path / "all")
    sf.save_checkpoint(tensors, path, format=fmt)
    loaded = sf.load_checkpoint(path + "." + _ext(fmt), format=fmt)
    _same_names(loaded, tensors, fmt)
    for name, t in tensors.items():
        p = loaded[name]
        assert isinstance(p, Parameter) and p.name == name
        assert p.dtype is t.dtype and p.shape == t.shape
        # compare storage bytes: NaN payloads, -0.0 and bf16 patterns must survive exactly
        assert p._data.tobytes() == t._data.tobytes(), name


def test_file_layout_is_as_documented(tmp_path):
    path = str(tmp_path / "x.ckpt")
    sf.save_checkpoint({"a": Tensor(np.array([1.0, 2.0], np.float32))}, path, format="sporeflow")
    blob = Path(path).read_bytes()
    magic, version, hlen = struct.unpack_from("<8sIQ", blob, 0)
    assert magic == b"\x89SFCKPT\n" and version == 1
    header = json.loads(blob[20:20 + hlen])
    assert header["tensors"] == [{"name": "a", "dtype": "float32", "shape": [2], "offset": 0, "nbytes": 8}]
    start = (20 + hlen + 63) // 64 * 64
    assert np.frombuffer(blob[start:start + 8], "<f4").tolist() == [1.0, 2.0]
    import hashlib
    assert hashlib.sha256(blob[:-32]).digest() == blob[-32:]
    assert len(blob) == start + header["data_nbytes"] + 32


def test_cell_round_trip_loads_in_place(tmp_path):
    src, dst = Net(scale=3.0), Net(scale=0.0)
    w_obj = dst.w
    path = str(tmp_path / "net")
    sf.save_checkpoint(src, path, append_dict={"epoch_num": 4, "lr": 0.5, "tag": "best"})
    assert os.path.isfile(path + ".ckpt")  # ".ckpt" appended as in MindSpore
    params = sf.load_checkpoint(path + ".ckpt")
    assert params["tag"] == "best" and int(params["epoch_num"].asnumpy()) == 4
    assert params["epoch_num"].dtype is D.int64 and params["lr"].dtype is D.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # extra entries only (append_dict): no warning
        not_loaded, unused = sf.load_param_into_net(dst, params)
    assert not_loaded == [] and sorted(unused) == ["epoch_num", "lr", "tag"]
    assert dst.w is w_obj
    np.testing.assert_array_equal(dst.w.asnumpy(), src.w.asnumpy())
    np.testing.assert_array_equal(dst.b.asnumpy(), src.b.asnumpy())


def test_load_checkpoint_with_net_and_prefix_filters(tmp_path):
    path = str(tmp_path / "n.ckpt")
    sf.save_checkpoint([{"name": "w", "data": Tensor(np.ones((2, 3), np.float32))},
                        {"name": "b", "data": np.zeros(3, np.float32)},
                        {"name": "moments.w", "data": Tensor(np.ones((2, 3), np.float32))}], path)
    assert list(sf.load_checkpoint(path, filter_prefix="moments")) == ["w", "b"]
    assert list(sf.load_checkpoint(path, filter_prefix=["moments", "b"])) == ["w"]
    assert list(sf.load_checkpoint(path, specify_prefix="moments")) == ["moments.w"]
    assert list(sf.load_checkpoint(path, choice_func=lambda n: n == "b")) == ["b"]
    with pytest.raises(ValueError, match="left no entry"):
        sf.load_checkpoint(path, specify_prefix="zzz")
    net = Net(scale=5.0)
    sf.load_checkpoint(path, net=net, filter_prefix="moments")
    np.testing.assert_array_equal(net.w.asnumpy(), np.ones((2, 3)))
    np.testing.assert_array_equal(net.b.asnumpy(), np.zeros(3))
    sf.save_checkpoint(net.trainable_params(), str(tmp_path / "plist"))
    assert list(sf.load_checkpoint(str(tmp_path / "plist.ckpt"))) == ["w", "b"]
    sf.save_checkpoint(net, str(tmp_path / "only_w"), choice_func=lambda n: n.startswith("w"))
    assert list(sf.load_checkpoint(str(tmp_path / "only_w.ckpt"))) == ["w"]


def _good_file(tmp_path, fmt="sporeflow"):
    path = str(tmp_path / "good.ckpt")
    sf.save_checkpoint(Net(scale=2.0), path, format=fmt)
    return path, Path(path).read_bytes()


@pytest.mark.parametrize("where", ["header", "data", "digest", "magic", "version"])
def test_corrupt_file_is_rejected(tmp_path, where):
    path, blob = _good_file(tmp_path)
    b = bytearray(blob)
    pos = {"header": 30, "data": len(b) - 40, "digest": len(b) - 1, "magic": 1, "version": 8}[where]
    b[pos] ^= 0x01
    Path(path).write_bytes(bytes(b))
    with pytest.raises(CheckpointError) as e:
        sf.load_checkpoint(path)
    assert path in str(e.value)
    net = Net(scale=7.0)
    with pytest.raises(CheckpointError):
        sf.load_checkpoint(path, net=net)
    np.testing.assert_array_equal(net.b.asnumpy(), np.full(3, 7.0))  # never half-loaded


@pytest.mark.parametrize("fmt", ["sporeflow", "ckpt"])
@pytest.mark.parametrize("keep", [0, 5, 19, 60, 100, -33, -1])
def test_truncated_file_is_rejected(tmp_path, keep, fmt):
    """(MindSpore's layout has no length field: a cut exactly between two messages is caught only
    by the CRC trailer sporeflow always writes, and is invisible in a file written without one.)"""
    path, blob = _good_file(tmp_path, fmt)
    keep = min(keep, len(blob) - 1)  # every cut removes at least one byte
    Path(path).write_bytes(blob[:keep] if keep >= 0 else blob[:len(blob) + keep])
    with pytest.raises(CheckpointError, match="corrupt or truncated|not a checkpoint|holds nothing"):
        sf.load_checkpoint(path)


@pytest.mark.parametrize("pos", [3, 20, 60, -20, -1])
def test_corrupt_mindspore_layout_fails_its_crc(tmp_path, pos):
    path, blob = _good_file(tmp_path, "ckpt")
    b = bytearray(blob)
    b[pos] ^= 0x01
    Path(path).write_bytes(bytes(b))
    net = Net(scale=7.0)
    with pytest.raises(CheckpointError, match="CRC-32|corrupt or truncated"):
        sf.load_checkpoint(path, net=net)
    np.testing.assert_array_equal(net.b.asnumpy(), np.full(3, 7.0))


def test_missing_file_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sf.load_checkpoint(str(tmp_path / "nope.ckpt"))
    p = tmp_path / "ms.ckpt"
    p.write_bytes(b"\n\x9d\x04\n\x081.weight\x12\x90\x04" + b"\0" * 64)
    with pytest.raises(CheckpointError, match="MindSpore checkpoint .* corrupt or truncated"):
        sf.load_checkpoint(str(p))
    p.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    with pytest.raises(CheckpointError, match="is not a checkpoint"):
        sf.load_checkpoint(str(p))


def test_crash_mid_write_keeps_previous_file(tmp_path, monkeypatch):
    path, blob = _good_file(tmp_path)

    def boom(i):
        if i == 1:
            raise OSError("disk full (simulated)")
    monkeypatch.setattr(ck, "_WRITE_HOOK", boom)
    with pytest.raises(OSError, match="simulated"):
        sf.save_checkpoint(Net(scale=9.0), path)
    assert Path(path).read_bytes() == blob
    assert os.listdir(tmp_path) == ["good.ckpt"]  # the temporary file was removed
    np.testing.assert_array_equal(sf.load_checkpoint(path)["b"].asnumpy(), np.full(3, 2.0))


def test_kill_during_write_keeps_previous_file(tmp_path):
    path, blob = _good_file(tmp_path)
    script = textwrap.dedent(f"""
        import sys, time, numpy as np
        sys.path.insert(0, {ROOT!r})
        import sporeflow as sf
        from sporeflow.runtime import checkpoint as ck
        def hook(i):
            if i == 2:
                print("MID", flush=True)
                time.sleep(60)
        ck._WRITE_HOOK = hook
        big = {{f"t{{k}}": np.full((64, 64), k, np.float32) for k in range(8)}}
        sf.save_checkpoint(big, {path!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "MID"
        temps = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
        assert len(temps) == 1 and os.path.getsize(tmp_path / temps[0]) > 0  # it really was mid-write
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert Path(path).read_bytes() == blob
    assert list(sf.load_checkpoint(path)) == ["w", "b"]
    sf.save_checkpoint(Net(scale=4.0), path)  # the next save removes the dead writer's temporary file
    assert os.listdir(tmp_path) == ["good.ckpt"]
    np.testing.assert_array_equal(sf.load_checkpoint(path)["b"].asnumpy(), np.full(3, 4.0))


def test_strict_load_and_name_mismatch_reporting(tmp_path):
    path = str(tmp_path / "plain.ckpt")
    sf.save_checkpoint(Net(scale=2.0), path)  # names 'w', 'b'
    params = sf.load_checkpoint(path)
    outer = Outer(scale=0.0)  # names 'backbone.w', 'backbone.b'
    with pytest.raises(CheckpointError, match=r"strict_load=True.*backbone\.w"):
        sf.load_param_into_net(outer, params, strict_load=True)
    with pytest.warns(UserWarning, match=r"backbone\.w.*look like them"):
        not_loaded, unused = sf.load_param_into_net(outer, params)
    assert sorted(not_loaded) == ["backbone.b", "backbone.w"] and sorted(unused) == ["b", "w"]
    np.testing.assert_array_equal(outer.backbone.b.asnumpy(), np.zeros(3))
    # exact match passes strict
    net = Net(scale=0.0)
    assert sf.load_param_into_net(net, params, strict_load=True) == ([], [])
    np.testing.assert_array_equal(net.b.asnumpy(), np.full(3, 2.0))


def test_shape_mismatch_names_parameter_and_shapes_and_loads_nothing(tmp_path):
    path = str(tmp_path / "s.ckpt")
    sf.save_checkpoint({"b": Tensor(np.ones(3, np.float32)), "w": Tensor(np.ones((3, 2), np.float32))}, path)
    net = Net(scale=5.0)
    with pytest.raises(CheckpointError, match=r"'w'.*\(2, 3\).*\(3, 2\)"):
        sf.load_checkpoint(path, net=net)
    np.testing.assert_array_equal(net.b.asnumpy(), np.full(3, 5.0))  # 'b' (valid) was not loaded either


def test_dtype_conversion_rules(tmp_path):
    params = {"w": Parameter(Tensor(np.ones((2, 3), np.float16)), name="w"),
              "b": Parameter(Tensor(np.full(3, 1.5, np.float32), D.bfloat16), name="b")}
    net = Net(scale=0.0)
    assert sf.load_param_into_net(net, params) == ([], [])
    assert net.w.dtype is D.float32 and net.b.dtype is D.float32
    np.testing.assert_array_equal(net.b.asnumpy(), np.full(3, 1.5))
    with pytest.raises(CheckpointError, match="float16 in the checkpoint"):
        sf.load_param_into_net(Net(), params, strict_load=True)
    with pytest.raises(CheckpointError, match="int32 in the checkpoint"):
        sf.load_param_into_net(Net(), {"w": Tensor(np.ones((2, 3), np.int32))})


def test_save_errors_and_async(tmp_path):
    with pytest.raises(TypeError, match="save_obj"):
        sf.save_checkpoint(42, str(tmp_path / "a"))
    with pytest.raises(ValueError, match="named 'x'"):
        sf.save_checkpoint([{"name": "x", "data": np.ones(2)}, {"name": "x", "data": np.zeros(2)}], str(tmp_path / "a"))
    with pytest.raises(NotImplementedError, match="encrypted"):
        sf.save_checkpoint({"x": np.ones(2)}, str(tmp_path / "a"), enc_key=b"k")
    net = Net(scale=3.0)
    path = str(tmp_path / "async.ckpt")
    sf.save_checkpoint(net, path, async_save=True)
    net.b.set_data(Tensor(np.zeros(3, np.float32)))  # the save took a snapshot
    ck.wait_async_save()
    np.testing.assert_array_equal(sf.load_checkpoint(path)["b"].asnumpy(), np.full(3, 3.0))


from hypothesis import given, strategies as st  # noqa: E402


@given(entries=st.lists(st.tuples(st.sampled_from([d.name for d in D.ALL_DTYPES]),
                                  st.lists(st.integers(0, 4), max_size=3), st.integers(0, 2 ** 32 - 1)),
                        min_size=1, max_size=5),
       fmt=st.sampled_from(["ckpt", "safetensors", "sporeflow"]))
def test_round_trip_random_tensors(tmp_path_factory, entries, fmt):
    tensors = {}
    for i, (name, shape, seed) in enumerate(entries):
        dt = D.BY_NAME[name]
        raw = np.random.default_rng(seed).integers(0, 256, int(np.prod(shape)) * dt.storage.itemsize, dtype=np.uint8)
        arr = raw.view(dt.storage).reshape(shape)  # arbitrary bit patterns, NaNs included
        if dt is D.bool_:
            arr = arr.astype(bool)
        tensors[f"p{i}.{name}"] = Tensor._wrap(np.ascontiguousarray(arr), dt)
    path = str(tmp_path_factory.mktemp("ck") / "r")
    sf.save_checkpoint(tensors, path, format=fmt)
    loaded = sf.load_checkpoint(f"{path}.{_ext(fmt)}", format=fmt)
    _same_names(loaded, tensors, fmt)
    for k, t in tensors.items():
        assert loaded[k].dtype is t.dtype and loaded[k].shape == t.shape
        assert loaded[k]._data.tobytes() == t._data.tobytes()


# -- MindSpore's protobuf layout ------------------------------------------------------------------
def test_mindspore_layout_matches_observed_bytes(tmp_path):
    """mindspore-api.md section 4 quotes the first bytes of a real MindSpore checkpoint holding
    '1.weight' of shape (16, 8) float32; sporeflow's writer must produce exactly them."""
    path = str(tmp_path / "ms.ckpt")
    sf.save_checkpoint({"1.weight": Tensor(np.ones((16, 8), np.float32))}, path)
    blob = Path(path).read_bytes()
    assert blob.startswith(b"\n\x9d\x04\n\x081.weight\x12\x90\x04\x08\x10\x08\x08\x12\x07Float32\x1a\x80\x04")
    assert blob[-17:-10] == b"crc_num"


def test_mindspore_layout_round_trip(tmp_path):
    tensors = _all_dtype_tensors()
    path = str(tmp_path / "ms.ckpt")
    sf.save_checkpoint(tensors, path, append_dict={"note": "héllo", "epoch_num": 3})
    loaded = sf.load_checkpoint(path)  # recognised by its first byte
    assert loaded["note"] == "héllo" and int(loaded["epoch_num"].asnumpy()) == 3
    for name, t in tensors.items():
        assert loaded[name].dtype is t.dtype and loaded[name].shape == t.shape, name
        assert loaded[name]._data.tobytes() == t._data.tobytes(), name
    blob = bytearray(Path(path).read_bytes())
    blob[40] ^= 0x10
    Path(path).write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="CRC-32"):
        sf.load_checkpoint(path)


def _reference_message(name, dims, ttype, content):
    """One Checkpoint message encoded by the protobuf library from MindSpore's schema."""
    from sporeflow.runtime.proto.checkpoint import Checkpoint
    c = Checkpoint()
    v = c.value.add(tag=name)
    v.tensor.dims.extend(dims)
    v.tensor.tensor_type = ttype
    v.tensor.tensor_content = content
    return c.SerializeToString()


def test_mindspore_layout_slices_and_truncation(tmp_path):
    msg = _reference_message
    a = np.arange(6, dtype=np.float32)
    # MindSpore splits big tensors into consecutive messages with one tag; no CRC trailer here
    blob = msg("w", [2, 3], "Float32", a[:4].tobytes()) + msg("w", [2, 3], "Float32", a[4:].tobytes()) + \
        msg("s", [0], "Float32", a[:1].tobytes())
    p = tmp_path / "sliced.ckpt"
    p.write_bytes(blob)
    got = sf.load_checkpoint(str(p))
    np.testing.assert_array_equal(got["w"].asnumpy(), a.reshape(2, 3))
    assert got["s"].shape == ()  # dims [0] is a scalar
    p.write_bytes(msg("e", [0], "Float32", b""))
    assert sf.load_checkpoint(str(p))["e"].shape == (0,)  # ... unless it has no data
    p.write_bytes(blob[:-3])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        sf.load_checkpoint(str(p))


def test_mindspore_layout_is_what_the_reference_library_decodes(tmp_path, monkeypatch):
    """The file minus its CRC trailer is a valid protobuf Checkpoint stream (concatenated messages
    merge), and a tensor bigger than SLICE_BYTES is written as consecutive slices."""
    from sporeflow.runtime import checkpoint_mindspore as ms
    from sporeflow.runtime.proto.checkpoint import Checkpoint
    monkeypatch.setattr(ms, "SLICE_BYTES", 16)
    w = np.arange(10, dtype=np.float32).reshape(2, 5)
    path = str(tmp_path / "ref.ckpt")
    sf.save_checkpoint({"w": Tensor(w), "b": Tensor(np.float16([1, 2]))}, path, append_dict={"note": "hi"})
    blob = Path(path).read_bytes()
    ref = Checkpoint.FromString(blob[:-17])
    assert [v.tag for v in ref.value] == ["w", "w", "w", "b", "note"]
    assert b"".join(v.tensor.tensor_content for v in ref.value[:3]) == w.tobytes()
    assert list(ref.value[0].tensor.dims) == [2, 5] and ref.value[3].tensor.tensor_type == "Float16"
    loaded = sf.load_checkpoint(path)
    np.testing.assert_array_equal(loaded["w"].asnumpy(), w) and loaded["note"] == "hi"
