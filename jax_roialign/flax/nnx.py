"""Flax nnx modules for RoIAlign: thin, parameter-free wrappers over the functional API.

Same contract as :mod:`jax_roialign.flax.linen` (see its classes for shapes and dtypes):
configuration is validated and normalized in ``__init__`` and kept as one static, frozen
attribute ``config`` (jax_roialign.module_config), so the modules hold no ``nnx.Variable`` and pass through
``nnx.jit``, ``nnx.vmap``, ``nnx.grad`` and plain ``jax`` transforms unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
from flax import nnx

from jax_roialign.module_config import MultiScaleConfig, RoIAlignConfig

__all__ = ["MultiScaleRoIAlign", "RoIAlign"]


class RoIAlign(nnx.Module):
    """RoIAlign as an nnx module (no parameters, no state).

    Arguments mirror the keywords of :func:`jax_roialign.roi_align` (``output_size``,
    ``spatial_scale``, ``sampling_ratio``, ``aligned``, ``mode``, ``impl``); a bad value
    raises ValueError / TypeError here.  ``module(features, boxes, batch_indices=None)``
    takes NHWC features (N, H, W, C) and boxes (N, R, 4), (K, 4) with batch_indices, or
    (K, 5), and returns (N, R, out_h, out_w, C) or (K, out_h, out_w, C) in the features'
    dtype (float32 accumulation, float64 for float64).
    """

    def __init__(
        self,
        output_size: int | tuple[int, int],
        *,
        spatial_scale: float = 1.0,
        sampling_ratio: int = 0,
        aligned: bool = True,
        mode: str = "avg",
        impl: str | None = None,
    ) -> None:
        self.config = RoIAlignConfig.checked(output_size, spatial_scale, sampling_ratio, aligned, mode, impl)

    def __call__(self, features: jax.Array, boxes: jax.Array, batch_indices: jax.Array | None = None) -> jax.Array:
        return self.config(features, boxes, batch_indices)


class MultiScaleRoIAlign(nnx.Module):
    """RoIAlign over FPN levels as an nnx module (no parameters, no state).

    Arguments mirror the keywords of :func:`jax_roialign.multiscale_roi_align`:
    ``output_size``; ``spatial_scales`` (finest first, strictly decreasing) or ``image_size``
    (height, width) to infer them; ``sampling_ratio``, ``aligned``, ``mode``,
    ``canonical_size``, ``canonical_level``, ``mapper``, ``impl``.  A bad value raises
    ValueError / TypeError here.  ``module(features, boxes, batch_indices=None, valid=None)`` takes a
    sequence (finest first) or dict of NHWC levels and boxes as :class:`RoIAlign`, and returns
    (K, out_h, out_w, C) or (N, R, out_h, out_w, C), rows in input order.
    """

    def __init__(
        self,
        output_size: int | tuple[int, int],
        *,
        spatial_scales: Sequence[float] | None = None,
        image_size: tuple[int, int] | None = None,
        sampling_ratio: int = 0,
        aligned: bool = True,
        mode: str = "avg",
        canonical_size: float = 224.0,
        canonical_level: int = 4,
        mapper: str = "torchvision",
        impl: str | None = None,
    ) -> None:
        self.config = MultiScaleConfig.checked(
            output_size,
            spatial_scales,
            image_size,
            sampling_ratio,
            aligned,
            mode,
            canonical_size,
            canonical_level,
            mapper,
            impl,
        )

    def __call__(
        self,
        features: Sequence[jax.Array] | Mapping[str, jax.Array],
        boxes: jax.Array,
        batch_indices: jax.Array | None = None,
        valid: jax.Array | None = None,
    ) -> jax.Array:
        return self.config(features, boxes, batch_indices, valid)
