"""ModelCheckpoint and CheckpointConfig (MindSpore 2.x names, defaults and file naming).

Files are `{prefix}-{epoch}_{step_in_epoch}.ckpt`; when the directory already holds checkpoints
with that prefix the prefix becomes `prefix_1`, `prefix_2`, ... (as MindSpore). What is saved is
`config.saved_network` or `cb_params.train_network`, so a Model checkpoint holds the optimizer
state (moments, global_step, learning_rate) and resuming is exact. MindSpore also writes a
`-graph.meta` file; sporeflow does not (its graphs are rebuilt from the code), said here on purpose.
"""
from __future__ import annotations

import os
import re
import time

import numpy as np

from ..frontend.tensor import Parameter, Tensor
from ..ir import comm
from .callbacks import Callback, step_in_epoch
from .checkpoint import save_checkpoint, wait_async_save


def _rank() -> int:
    """This process's rank in the communication world (0 when there is none)."""
    return comm.rank() if comm.initialized() else 0


class CheckpointConfig:
    def __init__(self, save_checkpoint_steps: int = 1, save_checkpoint_seconds: int = 0, keep_checkpoint_max: int = 5,
                 keep_checkpoint_per_n_minutes: int = 0, integrated_save: bool = True, async_save: bool = False,
                 saved_network=None, append_info=None, enc_key=None, enc_mode: str = "AES-GCM",
                 exception_save: bool = False, crc_check: bool = False, remove_redundancy: bool = False,
                 format: str = "ckpt", **kwargs):  # noqa: A002 (MindSpore's name)
        for name, v in (("save_checkpoint_steps", save_checkpoint_steps),
                        ("save_checkpoint_seconds", save_checkpoint_seconds),
                        ("keep_checkpoint_max", keep_checkpoint_max),
                        ("keep_checkpoint_per_n_minutes", keep_checkpoint_per_n_minutes)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise ValueError(f"CheckpointConfig: {name} must be an int >= 0 or None, got {v!r}")
        if not save_checkpoint_steps and not save_checkpoint_seconds and not keep_checkpoint_max \
                and not keep_checkpoint_per_n_minutes:
            raise ValueError("CheckpointConfig: save_checkpoint_steps, save_checkpoint_seconds, keep_checkpoint_max "
                             "and keep_checkpoint_per_n_minutes cannot all be 0 or None")
        if enc_key is not None:
            raise ValueError("CheckpointConfig: encrypted checkpoints (enc_key) are not supported")
        if exception_save:
            raise ValueError("CheckpointConfig: exception_save is not supported yet")
        if keep_checkpoint_per_n_minutes and not keep_checkpoint_max:
            raise ValueError("CheckpointConfig: keep_checkpoint_per_n_minutes is not supported yet; use "
                             "keep_checkpoint_max")
        if format not in ("ckpt", "safetensors"):
            raise ValueError(f"CheckpointConfig: format must be 'ckpt' or 'safetensors', got {format!r}")
        # data parallel: every rank holds the same parameters, so only rank 0 writes unless asked
        self.save_on_all_ranks = bool(kwargs.pop("save_on_all_ranks", False))
        if kwargs:
            raise TypeError(f"CheckpointConfig got unexpected keyword arguments {sorted(kwargs)}")
        # steps take priority over seconds, keep_max over per_n_minutes (MindSpore's rule)
        self.save_checkpoint_steps = save_checkpoint_steps
        self.save_checkpoint_seconds = 0 if save_checkpoint_steps else save_checkpoint_seconds
        self.keep_checkpoint_max = keep_checkpoint_max
        self.keep_checkpoint_per_n_minutes = keep_checkpoint_per_n_minutes
        self.integrated_save, self.async_save, self.saved_network = integrated_save, async_save, saved_network
        self.crc_check, self.format = crc_check, format
        self.append_info = self._check_append_info(append_info)

    @staticmethod
    def _check_append_info(info):
        if info is None:
            return []
        if not isinstance(info, list):
            raise TypeError("CheckpointConfig: append_info must be a list")
        out = []
        for item in info:
            if item in ("epoch_num", "step_num"):
                out.append(item)
            elif isinstance(item, dict):
                for k, v in item.items():
                    if not isinstance(k, str) or not isinstance(v, (int, float, bool, str, Parameter, Tensor)):
                        raise TypeError(f"CheckpointConfig: append_info dict entries must be str -> int|float|bool|"
                                        f"str|Tensor, got {k!r}: {type(v).__name__}")
                out.append(dict(item))
            else:
                raise ValueError(f"CheckpointConfig: append_info items must be 'epoch_num', 'step_num' or a dict, "
                                 f"got {item!r}")
        return out

    def get_checkpoint_policy(self) -> dict:
        return {"save_checkpoint_steps": self.save_checkpoint_steps,
                "save_checkpoint_seconds": self.save_checkpoint_seconds,
                "keep_checkpoint_max": self.keep_checkpoint_max,
                "keep_checkpoint_per_n_minutes": self.keep_checkpoint_per_n_minutes}


class ModelCheckpoint(Callback):
    def __init__(self, prefix="CKP", directory=None, config: CheckpointConfig | None = None):
        if isinstance(prefix, str) and ("/" in prefix or os.sep in prefix):
            raise ValueError(f"ModelCheckpoint: prefix {prefix!r} must not contain '/'; use directory=...")
        if config is not None and not isinstance(config, CheckpointConfig):
            raise TypeError("ModelCheckpoint: config must be a CheckpointConfig")
        self._prefix_arg, self._directory_arg = prefix, directory
        self._config = config or CheckpointConfig()
        self._prefix = None
        self._directory = None
        self._last_step = 0
        self._last_time = time.time()
        self._saved: list[str] = []
        self._append_totals = {"epoch_num": 0, "step_num": 0}
        self.latest_ckpt_file_name = ""

    # -- naming ------------------------------------------------------------------------------------
    def _resolve(self, cb_params) -> None:
        prefix = self._prefix_arg(cb_params) if callable(self._prefix_arg) else self._prefix_arg
        directory = self._directory_arg(cb_params) if callable(self._directory_arg) else self._directory_arg
        directory = os.path.abspath(directory or os.getcwd())
        os.makedirs(directory, exist_ok=True)
        if _rank() and self._config.save_on_all_ranks:
            prefix = f"{prefix}_rank{_rank()}"
        base, n = prefix, 0
        while self._exists(directory, prefix):
            n += 1
            prefix = f"{base}_{n}"
        self._prefix, self._directory = prefix, directory

    def _exists(self, directory: str, prefix: str) -> bool:
        ext = "." + self._config.format
        return any(f.startswith(prefix + "-") and f.endswith(ext) for f in os.listdir(directory))

    @property
    def _ext(self) -> str:
        return "." + self._config.format

    # -- hooks --------------------------------------------------------------------------------------
    def on_train_begin(self, run_context):
        self._resolve(run_context.original_args())
        self._last_step = run_context.original_args().cur_step_num
        self._last_time = time.time()

    def on_train_step_end(self, run_context):
        cb = run_context.original_args()
        cfg = self._config
        due = (cfg.save_checkpoint_steps and cb.cur_step_num >= self._last_step + cfg.save_checkpoint_steps) or \
            (cfg.save_checkpoint_seconds and time.time() - self._last_time >= cfg.save_checkpoint_seconds)
        if due:
            self._save(cb)

    def on_train_end(self, run_context):
        cb = run_context.original_args()
        if cb.cur_step_num != self._last_step or not self._saved:
            self._save(cb)
        wait_async_save()

    # -- saving -------------------------------------------------------------------------------------
    def _append_dict(self, cb) -> dict | None:
        """append_info entries; 'epoch_num'/'step_num' are cumulative: a number given for them in an
        append_info dict (e.g. read back from the checkpoint a run resumes from) is added to the
        current counter, as MindSpore does."""
        if not self._config.append_info:
            return None
        out: dict = {}
        wanted = set()
        for item in self._config.append_info:
            if isinstance(item, dict):
                out.update(item)
                wanted |= {k for k in ("epoch_num", "step_num") if k in item}
            else:
                wanted.add(item)
        for key, cur in (("epoch_num", cb.cur_epoch_num), ("step_num", cb.cur_step_num)):
            if key in wanted:
                base = out.get(key, 0)
                base = int(np.asarray(base.asnumpy() if isinstance(base, Tensor) else base).reshape(-1)[0])
                out[key] = base + int(cur)
        return out

    def _save(self, cb) -> None:
        if _rank() and not self._config.save_on_all_ranks:    # rank 0 writes for the group
            self._last_step, self._last_time = cb.cur_step_num, time.time()
            return
        if self._prefix is None:
            self._resolve(cb)
        name = f"{self._prefix}-{cb.cur_epoch_num}_{step_in_epoch(cb)}{self._ext}"
        path = os.path.join(self._directory, name)
        self._prune()
        net = self._config.saved_network or cb.train_network
        save_checkpoint(net, path, async_save=self._config.async_save, append_dict=self._append_dict(cb),
                        format=self._config.format)
        self._last_step = cb.cur_step_num
        self._last_time = time.time()
        if path in self._saved:
            self._saved.remove(path)
        self._saved.append(path)
        self.latest_ckpt_file_name = path
        cb["latest_ckpt_file"] = path
        cb["last_save_ckpt_step"] = cb.cur_step_num

    def _prune(self) -> None:
        """Keep at most keep_checkpoint_max files of this prefix (the oldest by mtime go first)."""
        keep = self._config.keep_checkpoint_max
        if not keep:
            return
        pat = re.compile(re.escape(self._prefix) + r"-\d+_\d+" + re.escape(self._ext) + "$")
        files = [os.path.join(self._directory, f) for f in os.listdir(self._directory) if pat.match(f)]
        files.sort(key=lambda f: os.stat(f).st_mtime_ns)
        while len(files) >= keep:
            os.remove(files.pop(0))
