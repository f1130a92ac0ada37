"""Checkpoints: save_checkpoint / load_checkpoint / load_param_into_net (MindSpore 2.x API).

Formats (no pickle anywhere), chosen by `format=`:
- "ckpt" (the default): MindSpore's protobuf layout, so MindSpore reads sporeflow's weights and
  the other way round (checkpoint_mindspore.py), with a CRC-32 trailer as the checksum;
- "safetensors": through the safetensors package (checkpoint_safetensors.py);
- "sporeflow": sporeflow's own layout below, with a SHA-256 checksum and 64-byte aligned data.
load_checkpoint(format="ckpt") reads both `.ckpt` layouts, telling them apart by the magic.

sporeflow's own layout (`.ckpt`, version 1), all integers little-endian:

    offset   size  field
    0        8     magic b"\\x89SFCKPT\\n" (a non-ASCII byte and a newline catch text-mode damage)
    8        4     uint32 format version (1)
    12       8     uint64 H, length of the header
    20       H     header: UTF-8 JSON object
                     {"format": "sporeflow.checkpoint", "version": 1, "data_nbytes": N,
                      "tensors": [{"name", "dtype", "shape", "offset", "nbytes"}, ...],
                      "strings": {name: str, ...}}      # str values of append_dict
    D        N     data, D = 20 + H rounded up to 64; each tensor's C-order little-endian bytes
                   at D + offset, offsets 64-aligned (zero padding between)
    D+N      32    SHA-256 of bytes [0, D+N)

`dtype` is a sporeflow dtype name (float32, bfloat16, int64, bool, ...); bfloat16 is stored as
its 16-bit pattern, bool as one byte per element. Tensors keep the order they were saved in.

Safety: a file is written to a temporary file in the same directory, flushed, fsync'ed and
moved over the target with os.replace, so a crash mid-write leaves the previous file intact.
A file is verified (size, magic, version, checksum, header consistency) before anything is
returned, so a corrupt or truncated file raises CheckpointError and is never half-loaded;
load_param_into_net checks every shape and dtype before it writes any parameter.

Where sporeflow departs from MindSpore on purpose (mindspore-api.md section 4):
- A parameter that is not loaded (e.g. a name mismatch: `weight` vs `backbone.weight`) is not
  skipped silently: besides the returned lists, a warning names the parameters left at their
  current values and suggests the checkpoint entries that look like them. Extra checkpoint
  entries alone (optimizer state loaded into a bare network) do not warn.
- `strict_load=True` raises CheckpointError unless the names match exactly both ways (and no
  dtype conversion is needed); MindSpore's strict_load only controls dtype conversion.
- A shape mismatch raises CheckpointError (a ValueError) naming the parameter and both shapes,
  before any parameter is changed (MindSpore raises RuntimeError).
- Encryption (enc_key / dec_key) is not supported and raises, instead of being half-supported.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import struct
import threading
import uuid
import warnings
from collections import OrderedDict
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import CheckpointError
from ..ir import dtypes as D
from ..ir.dtypes import DType
from . import checkpoint_mindspore as _ms
from . import checkpoint_safetensors as _st
from ..frontend.placement import to_host
from ..frontend.tensor import Tensor, Tracer, Parameter
from ..frontend.cell import Cell

MAGIC = b"\x89SFCKPT\n"
VERSION = 1
_ALIGN = 64
_DIGEST = 32
_PREFIX = struct.Struct("<8sIQ")  # magic, version, header length

# Test hook: called after each chunk is written (used to simulate a crash mid-write).
_WRITE_HOOK: Callable[[int], None] | None = None


# ----------------------------------------------------------------------------------------------
# collecting what to save
# ----------------------------------------------------------------------------------------------
def _c_order(a: np.ndarray) -> np.ndarray:
    # not np.ascontiguousarray: it turns 0-d arrays into 1-d ones
    return a if a.flags.c_contiguous else np.array(a, order="C")


def _storage_of(value: Any, name: str) -> tuple[np.ndarray, DType]:
    """A Tensor/Parameter/ndarray/number -> (C-order storage array, dtype)."""
    if isinstance(value, Tracer):
        raise TypeError(f"checkpoint entry '{name}' is a traced value; save concrete tensors")
    if isinstance(value, Tensor):
        return _c_order(to_host(value._data)), value.dtype
    if isinstance(value, (np.ndarray, np.generic, int, float, bool, list, tuple)):
        t = Tensor(value)
        return _c_order(to_host(t._data)), t.dtype
    raise TypeError(f"checkpoint entry '{name}' has type {type(value).__name__}; expected a Tensor, "
                    "Parameter, numpy array, number or (in append_dict) str")


def _collect(save_obj, append_dict: dict | None, choice_func) -> tuple[list, dict]:
    """-> ([(name, storage, dtype)], {name: str})"""
    items: list[tuple[str, Any]] = []
    if isinstance(save_obj, Cell):
        items = [(p.name, p) for _, p in save_obj.parameters_and_names()]
    elif isinstance(save_obj, dict):
        items = list(save_obj.items())
    elif isinstance(save_obj, (list, tuple)):
        for i, entry in enumerate(save_obj):
            if isinstance(entry, Parameter):  # e.g. net.trainable_params()
                items.append((entry.name, entry))
                continue
            if not isinstance(entry, dict) or "name" not in entry or "data" not in entry:
                raise TypeError(f"save_checkpoint: element {i} of the list must be a Parameter or a dict "
                                "{'name': str, 'data': Tensor}")
            items.append((entry["name"], entry["data"]))
    else:
        raise TypeError(f"save_checkpoint: save_obj must be a Cell, a list of {{'name', 'data'}} dicts or a "
                        f"dict, got {type(save_obj).__name__}")
    if append_dict:
        if not isinstance(append_dict, dict):
            raise TypeError("save_checkpoint: append_dict must be a dict")
        items += list(append_dict.items())
    tensors, strings, seen = [], {}, {}
    for name, value in items:
        if not isinstance(name, str):
            raise TypeError(f"save_checkpoint: entry names must be str, got {name!r}")
        if choice_func is not None and not choice_func(name):
            continue
        if name in seen:
            if seen[name] is value:
                continue
            raise ValueError(f"save_checkpoint: two different entries are named '{name}'; names must be unique")
        seen[name] = value
        if isinstance(value, str):
            strings[name] = value
            continue
        arr, dt = _storage_of(value, name)
        tensors.append((name, arr, dt))
    return tensors, strings


def _le_bytes(arr: np.ndarray) -> bytes:
    a = _c_order(arr)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and not np.little_endian):
        a = a.astype(a.dtype.newbyteorder("<"))
    return a.tobytes(order="C")


def _round_up(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


# ----------------------------------------------------------------------------------------------
# atomic writing
# ----------------------------------------------------------------------------------------------
def _remove_stale_temps(directory: str, base: str) -> None:
    """Delete temporary files a killed writer of `base` left behind (its process is gone)."""
    prefix = f".{base}."
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        try:
            pid = int(name[len(prefix):].split(".", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # still running: maybe a concurrent writer
        except ProcessLookupError:
            pass
        except (PermissionError, OSError):
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


def _atomic_write(path: str, chunks: Iterable[bytes]) -> None:
    """Write `chunks` to a temporary file next to `path`, fsync, then os.replace it over `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    _remove_stale_temps(directory, os.path.basename(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            for i, chunk in enumerate(chunks):
                f.write(chunk)
                if _WRITE_HOOK is not None:
                    f.flush()
                    _WRITE_HOOK(i)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable; not every platform lets us open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _sporeflow_chunks(tensors: list, strings: dict) -> Iterable[bytes]:
    entries, offset = [], 0
    for name, arr, dt in tensors:
        nbytes = arr.size * arr.dtype.itemsize
        entries.append({"name": name, "dtype": dt.name, "shape": list(arr.shape), "offset": offset,
                        "nbytes": nbytes})
        offset = _round_up(offset + nbytes)
    header = json.dumps({"format": "sporeflow.checkpoint", "version": VERSION, "data_nbytes": offset,
                         "tensors": entries, "strings": strings}, separators=(",", ":")).encode("utf-8")
    h = hashlib.sha256()

    def emit(b: bytes) -> bytes:
        h.update(b)
        return b

    head = _PREFIX.pack(MAGIC, VERSION, len(header)) + header
    yield emit(head + b"\0" * (_round_up(len(head)) - len(head)))
    for _, arr, _ in tensors:
        data = _le_bytes(arr)
        yield emit(data + b"\0" * (_round_up(len(data)) - len(data)))
    yield h.digest()


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------
def _from_le(blob: bytes, start: int, dt: DType, shape: tuple) -> np.ndarray:
    count = int(np.prod(shape, dtype=np.int64))
    arr = np.frombuffer(blob, dtype=dt.storage.newbyteorder("<"), count=count, offset=start)
    return arr.astype(dt.storage).reshape(shape)  # native byte order, owned, writeable


def _read_sporeflow(path: str, blob: bytes) -> tuple[list, dict]:
    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"checkpoint '{path}' is corrupt or truncated: {why}; it was not loaded")
    if len(blob) < _PREFIX.size + _DIGEST:
        raise bad(f"it has only {len(blob)} bytes")
    magic, version, hlen = _PREFIX.unpack_from(blob, 0)
    if magic != MAGIC:
        raise CheckpointError(f"'{path}' is not a sporeflow checkpoint (bad magic {magic!r})")
    if version != VERSION:
        raise CheckpointError(f"'{path}' has checkpoint format version {version}; this sporeflow reads "
                              f"version {VERSION}")
    if hashlib.sha256(memoryview(blob)[:-_DIGEST]).digest() != blob[-_DIGEST:]:
        raise bad("the SHA-256 checksum does not match")
    if _PREFIX.size + hlen > len(blob) - _DIGEST:
        raise bad(f"header length {hlen} exceeds the file")
    try:
        header = json.loads(blob[_PREFIX.size:_PREFIX.size + hlen].decode("utf-8"))
        data_start = _round_up(_PREFIX.size + hlen)
        if data_start + int(header["data_nbytes"]) + _DIGEST != len(blob):
            raise bad(f"size {len(blob)} does not match the header")
        out = []
        for e in header["tensors"]:
            dt = D.BY_NAME[e["dtype"]]
            shape = tuple(int(s) for s in e["shape"])
            off, nbytes = int(e["offset"]), int(e["nbytes"])
            if nbytes != int(np.prod(shape, dtype=np.int64)) * dt.storage.itemsize or \
                    off < 0 or off + nbytes > int(header["data_nbytes"]):
                raise bad(f"entry '{e['name']}' is inconsistent")
            out.append((str(e["name"]), _from_le(blob, data_start + off, dt, shape), dt))
        strings = {str(k): str(v) for k, v in header.get("strings", {}).items()}
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise bad(f"malformed header ({type(e).__name__}: {e})") from None
    return out, strings


# ----------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------
# format -> (file suffix, writer, reader)
_FORMATS = {"ckpt": (".ckpt", _ms.chunks, _ms.read), "safetensors": (".safetensors", _st.chunks, _st.read),
            "sporeflow": (".ckpt", _sporeflow_chunks, _read_sporeflow)}
_PENDING: list[tuple[threading.Thread, list]] = []
_PENDING_LOCK = threading.Lock()


def _file_name(ckpt_file_name, fmt: str) -> str:
    if not isinstance(ckpt_file_name, (str, os.PathLike)):
        raise TypeError(f"ckpt_file_name must be a str path, got {type(ckpt_file_name).__name__}")
    if fmt not in _FORMATS:
        raise ValueError(f"format must be one of {sorted(_FORMATS)}, got {fmt!r}")
    name = os.fspath(ckpt_file_name)
    if os.path.isdir(name):
        raise IsADirectoryError(f"save_checkpoint: ckpt_file_name '{name}' is a directory; give a file name")
    suffix = _FORMATS[fmt][0]
    return name if name.endswith(suffix) else name + suffix


def wait_async_save() -> None:
    """Block until every `save_checkpoint(..., async_save=True)` has finished; re-raise the first
    error one of them hit."""
    with _PENDING_LOCK:
        pending = list(_PENDING)
        _PENDING.clear()
    errors = []
    for t, err in pending:
        t.join()
        errors += err
    if errors:
        raise errors[0]


atexit.register(lambda: wait_async_save() if _PENDING else None)


def save_checkpoint(save_obj, ckpt_file_name, integrated_save: bool = True, async_save=False,
                    append_dict: dict | None = None, enc_key=None, enc_mode: str = "AES-GCM",
                    choice_func: Callable[[str], bool] | None = None, crc_check: bool = False,
                    format: str = "ckpt", **kwargs) -> None:  # noqa: A002 (MindSpore's name)
    """Save a Cell's parameters (or a list of Parameters or {'name', 'data'} dicts, or a dict
    name -> Tensor) plus `append_dict` to `ckpt_file_name` (".ckpt" is appended if missing),
    atomically. async_save may be True or "thread" ("process" is not supported).

    The integrity checksum is always written (crc_check is accepted for compatibility);
    integrated_save is accepted and has no effect (one device). With async_save the data is
    copied first, then written by a background thread; see wait_async_save()."""
    if enc_key is not None:
        raise NotImplementedError("save_checkpoint: encrypted checkpoints (enc_key) are not supported by sporeflow")
    unknown = set(kwargs) - {"remove_redundancy"}
    if unknown:
        raise TypeError(f"save_checkpoint got unexpected keyword arguments {sorted(unknown)}")
    if async_save not in (False, True, "thread"):
        raise ValueError(f"save_checkpoint: async_save must be a bool or 'thread', got {async_save!r}")
    path = _file_name(ckpt_file_name, format)
    tensors, strings = _collect(save_obj, append_dict, choice_func)
    chunks = _FORMATS[format][1]
    if not async_save:
        _atomic_write(path, chunks(tensors, strings))
        return
    tensors = [(n, a.copy(), d) for n, a, d in tensors]  # snapshot: training may go on meanwhile
    errors: list = []

    def work():
        try:
            _atomic_write(path, chunks(tensors, strings))
        except BaseException as e:  # noqa: BLE001 (re-raised by wait_async_save)
            errors.append(e)

    # Saves to the same file must not race: wait for earlier ones first.
    wait_async_save()
    t = threading.Thread(target=work, name=f"sporeflow-ckpt-save:{os.path.basename(path)}", daemon=False)
    with _PENDING_LOCK:
        _PENDING.append((t, errors))
    t.start()


def _read(path: str, fmt: str) -> tuple[list, dict]:
    wait_async_save()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_checkpoint: checkpoint file '{path}' does not exist")
    with open(path, "rb") as f:
        blob = f.read()
    if fmt != "safetensors" and blob[:len(MAGIC)] == MAGIC:
        fmt = "sporeflow"  # a .ckpt in sporeflow's own layout: recognised by its magic
    return _FORMATS[fmt][2](path, blob)


def _prefixes(p) -> tuple[str, ...]:
    if p is None:
        return ()
    if isinstance(p, str):
        return (p,)
    if isinstance(p, (list, tuple)) and all(isinstance(x, str) for x in p):
        return tuple(p)
    raise TypeError(f"prefix must be a str or a list of str, got {p!r}")


def load_checkpoint(ckpt_file_name, net=None, strict_load: bool = False, filter_prefix=None, dec_key=None,
                    dec_mode: str = "AES-GCM", specify_prefix=None, choice_func=None, crc_check: bool = False,
                    remove_redundancy: bool = False, format: str = "ckpt") -> dict:  # noqa: A002
    """Read a checkpoint -> {name: Parameter} (str values of append_dict come back as str).

    filter_prefix drops names starting with it, specify_prefix keeps only names starting with
    it, choice_func(name) keeps names for which it is true. With `net`, the parameters are also
    loaded into it (load_param_into_net(net, ..., strict_load))."""
    if dec_key is not None:
        raise NotImplementedError("load_checkpoint: encrypted checkpoints (dec_key) are not supported by sporeflow")
    if not isinstance(ckpt_file_name, (str, os.PathLike)):
        raise TypeError(f"ckpt_file_name must be a str path, got {type(ckpt_file_name).__name__}")
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {sorted(_FORMATS)}, got {format!r}")
    tensors, strings = _read(os.fspath(ckpt_file_name), format)
    drop, keep = _prefixes(filter_prefix), _prefixes(specify_prefix)

    def wanted(name: str) -> bool:
        if drop and name.startswith(drop):
            return False
        if keep and not name.startswith(keep):
            return False
        return choice_func is None or bool(choice_func(name))

    out: dict[str, Any] = OrderedDict()
    for name, arr, dt in tensors:
        if wanted(name):
            out[name] = Parameter(Tensor._wrap(arr, dt), name=name)
    for name, s in strings.items():
        if wanted(name):
            out[name] = s
    if not out and (tensors or strings):
        raise ValueError(f"load_checkpoint: filter_prefix/specify_prefix/choice_func left no entry of "
                         f"'{os.fspath(ckpt_file_name)}' (it has {len(tensors) + len(strings)})")
    if net is not None:
        load_param_into_net(net, out, strict_load=strict_load)
    return out


def _suggest(missing: list[str], unused: list[str]) -> str:
    hints = []
    for m in missing[:5]:
        tail = m.rsplit(".", 1)[-1]
        close = [u for u in unused if u.endswith("." + m) or m.endswith("." + u) or
                 (u.rsplit(".", 1)[-1] == tail and (u.endswith(m.split(".", 1)[-1]) or m.endswith(u.split(".", 1)[-1])))]
        if close:
            hints.append(f"'{m}' ~ {close[:3]}")
    return f"; entries that look like them (a prefix mismatch?): {', '.join(hints)}" if hints else ""


def _short(names: list[str], n: int = 10) -> str:
    return str(names[:n]) + (f" ... ({len(names)} in all)" if len(names) > n else "")


def load_param_into_net(net, parameter_dict: dict, strict_load: bool = False,
                        remove_redundancy: bool = False) -> tuple[list[str], list[str]]:
    """Copy `parameter_dict` values into the network's Parameters (in place), matched by name.

    Returns (param_not_load, ckpt_not_load): network parameters that got no value, and
    dict entries no parameter used. Every shape and dtype is checked before any parameter is
    written. Non-strict: float values of another float dtype are converted; missing network
    parameters are reported with a warning. strict_load=True raises CheckpointError unless
    names match exactly both ways and dtypes are equal."""
    if not isinstance(net, Cell):
        raise TypeError(f"load_param_into_net: net must be a Cell, got {type(net).__name__}")
    if not isinstance(parameter_dict, dict):
        raise TypeError(f"load_param_into_net: parameter_dict must be a dict, got {type(parameter_dict).__name__}")
    plan, param_not_load, used = [], [], set()
    for name, param in net.parameters_and_names():
        if name not in parameter_dict or isinstance(parameter_dict[name], str):
            param_not_load.append(name)
            continue
        used.add(name)
        arr, dt = _storage_of(parameter_dict[name], name)
        if tuple(arr.shape) != tuple(param.shape):
            raise CheckpointError(f"load_param_into_net: parameter '{name}' has shape {tuple(param.shape)} in the "
                                  f"network but {tuple(arr.shape)} in the checkpoint; nothing was loaded")
        if dt is not param.dtype:
            if strict_load or not (dt.is_float and param.dtype.is_float):
                raise CheckpointError(f"load_param_into_net: parameter '{name}' is {param.dtype.name} in the network "
                                      f"but {dt.name} in the checkpoint"
                                      + ("" if strict_load else " (only float-to-float is converted)")
                                      + "; nothing was loaded")
            arr = D.from_compute(D.to_compute(arr, dt), param.dtype)
        plan.append((param, arr))
    ckpt_not_load = [k for k in parameter_dict if k not in used]
    if strict_load and (param_not_load or ckpt_not_load):
        raise CheckpointError(f"load_param_into_net(strict_load=True): names differ. Network parameters not in "
                              f"the checkpoint: {_short(param_not_load)}; checkpoint entries not in the network: "
                              f"{_short(ckpt_not_load)}{_suggest(param_not_load, ckpt_not_load)}; nothing was loaded")
    for param, arr in plan:
        param.set_data(Tensor._wrap(arr, param.dtype))
    if param_not_load:
        warnings.warn(f"load_param_into_net: {len(param_not_load)} network parameter(s) were not in the checkpoint "
                      f"and keep their current values: {_short(param_not_load)}"
                      f"{_suggest(param_not_load, ckpt_not_load)}", stacklevel=2)
    return param_not_load, ckpt_not_load


__all__ = ["save_checkpoint", "load_checkpoint", "load_param_into_net", "wait_async_save", "MAGIC", "VERSION"]
