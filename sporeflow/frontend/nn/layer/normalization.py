"""BatchNorm1d/2d and LayerNorm.

BatchNorm follows MindSpore's momentum convention: moving = momentum*moving + (1-momentum)*batch
(momentum=0.9; PyTorch's 0.1 means the same). In training the batch statistics normalize and the
moving statistics are updated with `ops.assign` (inside a compiled step that becomes a graph output
written back after the step); in eval the moving statistics normalize. The moving variance takes
the unbiased batch variance (n/(n-1)), as MindSpore's and PyTorch's kernels do.
"""
from __future__ import annotations

from ....ir import dtypes as D
from ... import functional as F
from ....core import lax
from ...cell import Cell
from ...tensor import Parameter
from ..initializer import initializer
from .._check import shape_error


class _BatchNorm(Cell):
    _ndims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.9, affine: bool = True,
                 gamma_init="ones", beta_init="zeros", moving_mean_init="zeros", moving_var_init="ones",
                 use_batch_statistics=None, data_format: str = "NCHW", dtype=D.float32):
        super().__init__()
        if data_format != "NCHW":
            raise ValueError(f"{type(self).__name__}: data_format {data_format!r} is not supported yet")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{type(self).__name__}: momentum must be in [0, 1], got {momentum}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        self.use_batch_statistics, self.affine = use_batch_statistics, affine
        n = (num_features,)
        # Names as MindSpore: 'mean'/'variance' at top level, 'moving_mean'/'moving_variance' when nested.
        self.moving_mean = Parameter(initializer(moving_mean_init, n, dtype), name="mean", requires_grad=False)
        self.moving_variance = Parameter(initializer(moving_var_init, n, dtype), name="variance", requires_grad=False)
        self.gamma = Parameter(initializer(gamma_init, n, dtype), name="gamma", requires_grad=affine)
        self.beta = Parameter(initializer(beta_init, n, dtype), name="beta", requires_grad=affine)

    def _prefix_names(self, prefix: str) -> None:
        for attr in ("moving_mean", "moving_variance"):
            p = getattr(self, attr)
            if p.name in ("mean", "variance"):
                p.name = attr
        super()._prefix_names(prefix)

    def construct(self, x):
        if x.ndim not in self._ndims or x.shape[1] != self.num_features:
            raise shape_error(f"{type(self).__name__}: input shape {x.shape} does not match "
                             f"[N, {self.num_features}{', ...' if x.ndim > 2 else ''}] (rank in {self._ndims})")
        axes = (0,) + tuple(range(2, x.ndim))
        bshape = (1, self.num_features) + (1,) * (x.ndim - 2)
        use_batch = self.training if self.use_batch_statistics is None else self.use_batch_statistics
        if use_batch:
            mean = F.mean(x, axes, True)
            d = F.sub(x, mean)
            var = F.mean(F.mul(d, d), axes, True)
            if self.training:
                n = x.size // self.num_features
                m = self.momentum
                bm, bv = F.reshape(lax.stop_gradient(mean), (-1,)), F.reshape(lax.stop_gradient(var), (-1,))
                unbiased = F.mul(bv, n / max(n - 1, 1))
                F.assign(self.moving_mean, F.add(F.mul(self.moving_mean, m), F.mul(bm, 1.0 - m)))
                F.assign(self.moving_variance, F.add(F.mul(self.moving_variance, m), F.mul(unbiased, 1.0 - m)))
        else:
            mean = F.reshape(self.moving_mean, bshape)
            var = F.reshape(self.moving_variance, bshape)
            d = F.sub(x, mean)
        y = F.mul(d, lax.rsqrt(F.add(var, self.eps)))
        return F.add(F.mul(y, F.reshape(self.gamma, bshape)), F.reshape(self.beta, bshape))

    def extend_repr(self) -> str:
        return f"num_features={self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Input [N, C] or [N, C, L]."""
    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Input [N, C, H, W]."""
    _ndims = (4,)


class LayerNorm(Cell):
    """Normalizes over axes begin_norm_axis..end; gamma/beta of shape normalized_shape."""

    def __init__(self, normalized_shape, begin_norm_axis: int = -1, begin_params_axis: int = -1, gamma_init="ones",
                 beta_init="zeros", epsilon: float = 1e-7, dtype=D.float32):
        super().__init__()
        if not isinstance(normalized_shape, (tuple, list)):
            raise TypeError(f"LayerNorm: normalized_shape must be a tuple or list, got {normalized_shape!r}")
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.begin_norm_axis, self.begin_params_axis, self.epsilon = begin_norm_axis, begin_params_axis, epsilon
        self.gamma = Parameter(initializer(gamma_init, self.normalized_shape, dtype), name="gamma")
        self.beta = Parameter(initializer(beta_init, self.normalized_shape, dtype), name="beta")

    def construct(self, x):
        b = self.begin_norm_axis % x.ndim
        if tuple(x.shape[x.ndim - len(self.normalized_shape):]) != self.normalized_shape:
            raise shape_error(f"LayerNorm: input shape {x.shape} does not end with normalized_shape "
                             f"{self.normalized_shape}")
        return F.layer_norm(x, tuple(range(b, x.ndim)), self.gamma, self.beta, self.epsilon)

    def extend_repr(self) -> str:
        return f"normalized_shape={self.normalized_shape}, begin_norm_axis={self.begin_norm_axis}"


class GroupNorm(Cell):
    """y = (x - mean) / sqrt(var + eps) * gamma + beta, with mean and (biased) variance over each
    group of num_channels/num_groups channels and all spatial positions; input [N, C, *]."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 gamma_init="ones", beta_init="zeros", dtype=D.float32):
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels {num_channels} must be divisible by num_groups {num_groups}")
        self.num_groups, self.num_channels, self.eps, self.affine = int(num_groups), int(num_channels), float(eps), \
            affine
        self.gamma = Parameter(initializer(gamma_init, (num_channels,), dtype), name="gamma", requires_grad=affine)
        self.beta = Parameter(initializer(beta_init, (num_channels,), dtype), name="beta", requires_grad=affine)

    def construct(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise shape_error(f"GroupNorm: input shape {x.shape} does not match [N, {self.num_channels}, ...]")
        n, g = x.shape[0], self.num_groups
        xg = F.reshape(x, (n, g, -1))
        mean = F.mean(xg, 2, True)
        d = F.sub(xg, mean)
        var = F.mean(F.mul(d, d), 2, True)
        y = F.reshape(F.mul(d, lax.rsqrt(F.add(var, self.eps))), x.shape)
        bshape = (1, self.num_channels) + (1,) * (x.ndim - 2)
        return F.add(F.mul(y, F.reshape(F.cast(self.gamma, y.dtype), bshape)),
                     F.reshape(F.cast(self.beta, y.dtype), bshape))

    def extend_repr(self) -> str:
        return f"num_groups={self.num_groups}, num_channels={self.num_channels}, eps={self.eps}"
