"""`dataset.vision`: image transforms on numpy HWC (or HW) arrays, as MindSpore's.

Each transform is a callable object usable in `Dataset.map` or eagerly (`Rescale(1/255, 0)(img)`).
Random transforms draw from the pipeline's seeded generator (config.current_rng), so a seeded
pipeline augments identically run after run. Resize follows OpenCV's conventions (which
MindSpore uses): LINEAR samples at half-pixel centres, NEAREST takes floor(dst * scale); integer
images are rounded back to their dtype (OpenCV's fixed-point arithmetic can differ by 1).
"""
from __future__ import annotations

from enum import Enum
from numbers import Number

import numpy as np

from ...errors import DatasetError
from .config import current_rng
from .imaging import decode_image


class Inter(Enum):
    """Interpolation modes (MindSpore's vision.Inter); LINEAR and BILINEAR are one mode."""
    NEAREST = 0
    LINEAR = 1
    BILINEAR = 1
    CUBIC = 2
    BICUBIC = 2
    AREA = 3
    PILCUBIC = 4
    ANTIALIAS = 5


class Border(Enum):
    """Padding modes (MindSpore's vision.Border), mapped onto np.pad modes."""
    CONSTANT = "constant"
    EDGE = "edge"
    REFLECT = "reflect"
    SYMMETRIC = "symmetric"


def _image(img, op: str) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim not in (2, 3):
        raise DatasetError(f"{op}: expected an image of shape (H, W) or (H, W, C), got shape {a.shape}")
    return a


def _pair(size, op: str) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        s = (int(size), int(size))
    elif isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, (int, np.integer)) for v in size):
        s = (int(size[0]), int(size[1]))
    else:
        raise TypeError(f"{op}: size must be an int or a (height, width) pair, got {size!r}")
    if min(s) < 1:
        raise ValueError(f"{op}: size must be positive, got {size!r}")
    return s


class _Op:
    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Rescale(_Op):
    """x * rescale + shift, as float32."""

    def __init__(self, rescale: float, shift: float):
        self.rescale, self.shift = float(rescale), float(shift)

    def __call__(self, img):
        a = np.asarray(img)
        return (a.astype(np.float32) * np.float32(self.rescale) + np.float32(self.shift)).astype(np.float32)

    def _batched(self, imgs):  # elementwise: the same on a batch
        return self(imgs)


class Normalize(_Op):
    """(x - mean) / std per channel, as float32; channels last (is_hwc=True) or first."""

    def __init__(self, mean, std, is_hwc: bool = True):
        self.mean = [float(m) for m in (mean if isinstance(mean, (list, tuple)) else [mean])]
        self.std = [float(s) for s in (std if isinstance(std, (list, tuple)) else [std])]
        if len(self.mean) != len(self.std):
            raise ValueError(f"Normalize: mean has {len(self.mean)} values but std has {len(self.std)}")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"Normalize: std must be positive, got {self.std}")
        self.is_hwc = bool(is_hwc)

    def __call__(self, img):
        return self._normalize(_image(img, "Normalize"), 0)

    def _batched(self, imgs):
        a = np.asarray(imgs)
        if a.ndim not in (3, 4):
            raise DatasetError(f"Normalize: expected a batch of (H, W) or (H, W, C) images, got shape {a.shape}")
        return self._normalize(a, 1)

    def _normalize(self, a: np.ndarray, lead: int) -> np.ndarray:
        """`lead` leading (batch) axes come before the image axes."""
        a = a.astype(np.float32)
        image_ndim = a.ndim - lead
        c = 1 if image_ndim == 2 else a.shape[-1 if self.is_hwc else lead]
        if len(self.mean) not in (1, c):
            raise DatasetError(f"Normalize: the image has {c} channel(s) (shape {a.shape[lead:]}, "
                               f"{'HWC' if self.is_hwc else 'CHW'}) but mean/std have {len(self.mean)} values")
        shape = (-1,) if (image_ndim == 2 or self.is_hwc) else (-1, 1, 1)
        mean = np.asarray(self.mean, np.float32).reshape(shape)
        std = np.asarray(self.std, np.float32).reshape(shape)
        return ((a - mean) / std).astype(np.float32)


class HWC2CHW(_Op):
    """(H, W, C) -> (C, H, W); an (H, W) image stays as it is."""

    def __call__(self, img):
        a = _image(img, "HWC2CHW")
        return a if a.ndim == 2 else np.ascontiguousarray(a.transpose(2, 0, 1))

    def _batched(self, imgs):
        a = np.asarray(imgs)
        if a.ndim not in (3, 4):
            raise DatasetError(f"HWC2CHW: expected a batch of (H, W) or (H, W, C) images, got shape {a.shape}")
        return a if a.ndim == 3 else np.ascontiguousarray(a.transpose(0, 3, 1, 2))


class ToTensor(_Op):
    """uint8 HWC in [0, 255] -> float32 CHW in [0, 1] (MindSpore's vision.ToTensor)."""

    def __init__(self, output_type=np.float32):
        self.output_type = output_type

    def __call__(self, img):
        return self._apply(_image(img, "ToTensor"), 0)

    def _batched(self, imgs):
        a = np.asarray(imgs)
        if a.ndim not in (3, 4):
            raise DatasetError(f"ToTensor: expected a batch of (H, W) or (H, W, C) images, got shape {a.shape}")
        return self._apply(a, 1)

    def _apply(self, a: np.ndarray, lead: int) -> np.ndarray:
        if a.ndim == lead + 2:
            a = a[..., None]
        out = a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else 1.0)
        perm = tuple(range(lead)) + (lead + 2, lead, lead + 1)
        return np.ascontiguousarray(out.transpose(perm)).astype(self.output_type)


def _resize(a: np.ndarray, h2: int, w2: int, mode: Inter, lead: int = 0) -> np.ndarray:
    """Resize axes (lead, lead + 1) of `a` to (h2, w2); `lead` batch axes come first."""
    h, w = a.shape[lead:lead + 2]
    if mode is Inter.NEAREST:
        ys = np.minimum((np.arange(h2) * (h / h2)).astype(np.int64), h - 1)
        xs = np.minimum((np.arange(w2) * (w / w2)).astype(np.int64), w - 1)
        return a.take(ys, axis=lead).take(xs, axis=lead + 1)

    def axis(n_out, n_in):
        src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        i0 = np.floor(src).astype(np.int64)
        return i0, np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32)

    y0, y1, wy = axis(h2, h)
    x0, x1, wx = axis(w2, w)
    f = a.astype(np.float32)
    extra = (1,) * (a.ndim - lead - 2)
    wy = wy.reshape((1,) * lead + (-1, 1) + extra)
    wx = wx.reshape((1,) * lead + (1, -1) + extra)
    r0, r1 = f.take(y0, axis=lead), f.take(y1, axis=lead)
    top = r0.take(x0, axis=lead + 1) * (1 - wx) + r0.take(x1, axis=lead + 1) * wx
    bot = r1.take(x0, axis=lead + 1) * (1 - wx) + r1.take(x1, axis=lead + 1) * wx
    out = top * (1 - wy) + bot * wy
    if a.dtype.kind in "ui":
        info = np.iinfo(a.dtype)
        return np.clip(np.floor(out + 0.5), info.min, info.max).astype(a.dtype)
    return out.astype(a.dtype)


class Resize(_Op):
    """Resize to (height, width); an int resizes the shorter side, keeping the aspect ratio.
    Supported: Inter.LINEAR (= BILINEAR, the default) and Inter.NEAREST."""

    def __init__(self, size, interpolation: Inter = Inter.LINEAR):
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            if size < 1:
                raise ValueError(f"Resize: size must be positive, got {size}")
            self.size = int(size)
        else:
            self.size = _pair(size, "Resize")
        if not isinstance(interpolation, Inter):
            raise TypeError(f"Resize: interpolation must be a vision.Inter, got {interpolation!r}")
        if interpolation not in (Inter.LINEAR, Inter.NEAREST):
            raise NotImplementedError(f"Resize: interpolation {interpolation.name} is not supported by sporeflow; "
                                      "use Inter.LINEAR or Inter.NEAREST")
        self.interpolation = interpolation

    def __call__(self, img):
        return self._apply(_image(img, "Resize"), 0)

    def _batched(self, imgs):
        a = np.asarray(imgs)
        if a.ndim not in (3, 4):
            raise DatasetError(f"Resize: expected a batch of (H, W) or (H, W, C) images, got shape {a.shape}")
        return self._apply(a, 1)

    def _apply(self, a: np.ndarray, lead: int) -> np.ndarray:
        h, w = a.shape[lead:lead + 2]
        if isinstance(self.size, int):
            if h <= w:
                h2, w2 = self.size, max(1, int(w * self.size / h))
            else:
                h2, w2 = max(1, int(h * self.size / w)), self.size
        else:
            h2, w2 = self.size
        if (h2, w2) == (h, w):
            return a.copy()
        return _resize(a, h2, w2, self.interpolation, lead)


def _pad_amounts(padding) -> tuple[int, int, int, int]:
    """-> (left, top, right, bottom) from an int, a pair (left/right, top/bottom) or four values."""
    if isinstance(padding, (int, np.integer)):
        p = int(padding)
        return p, p, p, p
    if isinstance(padding, (list, tuple)) and len(padding) == 2:
        return int(padding[0]), int(padding[1]), int(padding[0]), int(padding[1])
    if isinstance(padding, (list, tuple)) and len(padding) == 4:
        return tuple(int(v) for v in padding)  # type: ignore[return-value]
    raise TypeError(f"padding must be an int or a sequence of 2 or 4 ints, got {padding!r}")


def _pad(a: np.ndarray, left: int, top: int, right: int, bottom: int, fill, mode: Border) -> np.ndarray:
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (a.ndim - 2)
    if mode is Border.CONSTANT:
        if a.ndim == 3 and isinstance(fill, (tuple, list)):
            out = np.stack([np.pad(a[..., c], widths[:2], constant_values=fill[c]) for c in range(a.shape[2])], -1)
            return out.astype(a.dtype)
        return np.pad(a, widths, mode="constant", constant_values=fill)
    return np.pad(a, widths, mode=mode.value)


class RandomCrop(_Op):
    """Crop a random (height, width) window, after optional padding."""

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill_value=0,
                 padding_mode: Border = Border.CONSTANT):
        self.size = _pair(size, "RandomCrop")
        self.padding = None if padding is None else _pad_amounts(padding)
        if self.padding is not None and min(self.padding) < 0:
            raise ValueError(f"RandomCrop: padding must be non-negative, got {padding!r}")
        self.pad_if_needed = bool(pad_if_needed)
        if not isinstance(fill_value, (Number, tuple, list)):
            raise TypeError(f"RandomCrop: fill_value must be a number or a tuple, got {fill_value!r}")
        self.fill_value = fill_value
        if not isinstance(padding_mode, Border):
            raise TypeError(f"RandomCrop: padding_mode must be a vision.Border, got {padding_mode!r}")
        self.padding_mode = padding_mode

    def __call__(self, img):
        a = _image(img, "RandomCrop")
        if self.padding is not None:
            a = _pad(a, *self.padding, self.fill_value, self.padding_mode)
        th, tw = self.size
        h, w = a.shape[:2]
        if self.pad_if_needed and (h < th or w < tw):
            dh, dw = max(th - h, 0), max(tw - w, 0)
            a = _pad(a, dw // 2, dh // 2, dw - dw // 2, dh - dh // 2, self.fill_value, self.padding_mode)
            h, w = a.shape[:2]
        if h < th or w < tw:
            raise DatasetError(f"RandomCrop: crop size {self.size} is larger than the (padded) image {(h, w)}; "
                               "use padding= or pad_if_needed=True")
        rng = current_rng()
        top = int(rng.integers(0, h - th + 1))
        left = int(rng.integers(0, w - tw + 1))
        return np.ascontiguousarray(a[top:top + th, left:left + tw])


class CenterCrop(_Op):
    """Crop the central (height, width) window (padding with zeros if the image is smaller)."""

    def __init__(self, size):
        self.size = _pair(size, "CenterCrop")

    def __call__(self, img):
        a = _image(img, "CenterCrop")
        th, tw = self.size
        h, w = a.shape[:2]
        if h < th or w < tw:
            dh, dw = max(th - h, 0), max(tw - w, 0)
            a = _pad(a, dw // 2, dh // 2, dw - dw // 2, dh - dh // 2, 0, Border.CONSTANT)
            h, w = a.shape[:2]
        top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
        return np.ascontiguousarray(a[top:top + th, left:left + tw])


class _RandomFlip(_Op):
    _axis = 1

    def __init__(self, prob: float = 0.5):
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f"{type(self).__name__}: prob must be in [0, 1], got {prob!r}")
        self.prob = float(prob)

    def __call__(self, img):
        a = _image(img, type(self).__name__)
        if current_rng().random() < self.prob:
            return np.ascontiguousarray(np.flip(a, axis=self._axis))
        return a


class RandomHorizontalFlip(_RandomFlip):
    """Mirror left-right with probability prob."""
    _axis = 1


class RandomVerticalFlip(_RandomFlip):
    """Mirror top-bottom with probability prob."""
    _axis = 0


class Decode(_Op):
    """Encoded image bytes (JPEG, PNG, BMP, ...) -> HWC uint8 RGB array, through Pillow.
    to_pil=True (a PIL image out) is not supported: the other transforms take arrays."""

    def __init__(self, to_pil: bool = False):
        if to_pil:
            raise NotImplementedError("vision.Decode(to_pil=True) is not supported by sporeflow: its transforms work "
                                      "on numpy HWC arrays; use Decode() (to_pil=False)")
        self.to_pil = False

    def __call__(self, img):
        return decode_image(img, "vision.Decode")


__all__ = ["Inter", "Border", "Decode", "Rescale", "Normalize", "HWC2CHW", "ToTensor", "Resize", "RandomCrop", "CenterCrop",
           "RandomHorizontalFlip", "RandomVerticalFlip"]
