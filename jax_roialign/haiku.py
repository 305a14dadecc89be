"""Haiku modules for RoIAlign: thin, parameter-free wrappers over the functional API.

:class:`RoIAlign` and :class:`MultiScaleRoIAlign` hold configuration only and call
:func:`jax_roialign.roi_align` / :func:`jax_roialign.multiscale_roi_align`; like every
Haiku module they are built inside a function passed to ``hk.transform``, and they create
no parameters or state.  Arguments are validated in ``__init__``.  Needs Haiku
(``pip install "jax-roialign[haiku]"``); importing this module without it raises an
ImportError that says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax

from jax_roialign.module_config import MultiScaleConfig, RoIAlignConfig

try:
    import haiku as hk
except ImportError as err:
    raise ImportError('jax_roialign.haiku needs Haiku; install it with: pip install "jax-roialign[haiku]"') from err

__all__ = ["MultiScaleRoIAlign", "RoIAlign"]


class RoIAlign(hk.Module):
    """RoIAlign as a Haiku module (no parameters, no state).

    Arguments mirror the keywords of :func:`jax_roialign.roi_align`: ``output_size`` (int or
    (out_h, out_w)), ``spatial_scale``, ``sampling_ratio`` (> 0 fixed, <= 0 adaptive),
    ``aligned``, ``mode`` ("avg", "max", "corner_max"), ``impl`` (None, "xla", "pallas");
    a bad value raises ValueError / TypeError here.

    ``module(features, boxes, batch_indices=None)`` takes NHWC features (N, H, W, C) and boxes
    [x1, y1, x2, y2] in input-image coordinates, per-image padded (N, R, 4) or (K, 4) with
    batch_indices (K,) (or (K, 5)), and returns (N, R, out_h, out_w, C) or (K, out_h, out_w, C)
    in the features' dtype (float32 accumulation, float64 for float64).
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
        name: str | None = "roi_align",
    ) -> None:
        super().__init__(name=name)
        self.config = RoIAlignConfig.checked(output_size, spatial_scale, sampling_ratio, aligned, mode, impl)

    def __call__(self, features: jax.Array, boxes: jax.Array, batch_indices: jax.Array | None = None) -> jax.Array:
        return self.config(features, boxes, batch_indices)


class MultiScaleRoIAlign(hk.Module):
    """RoIAlign over FPN levels as a Haiku module (no parameters, no state).

    Arguments mirror the keywords of :func:`jax_roialign.multiscale_roi_align`:
    ``output_size``; ``spatial_scales`` (finest first, strictly decreasing) or ``image_size``
    (height, width) to infer them; ``sampling_ratio``, ``aligned``, ``mode``,
    ``canonical_size``, ``canonical_level``, ``mapper`` ("torchvision" or "detectron2"),
    ``impl``.  A bad value raises ValueError / TypeError here.

    ``module(features, boxes, batch_indices=None, valid=None)`` takes a sequence (finest first) or dict of
    NHWC levels and boxes as :class:`RoIAlign`, and returns (K, out_h, out_w, C) or
    (N, R, out_h, out_w, C), rows in input order, each box pooled from the level its size selects.
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
        name: str | None = "multiscale_roi_align",
    ) -> None:
        super().__init__(name=name)
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
