"""Flax linen modules for RoIAlign: thin, parameter-free wrappers over the functional API.

:class:`RoIAlign` and :class:`MultiScaleRoIAlign` hold configuration only and call
:func:`jax_roialign.roi_align` / :func:`jax_roialign.multiscale_roi_align`, so their results
are those functions' results, bit for bit, under ``jit``, ``vmap`` and ``grad``.  Arguments
are validated when the module is constructed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax

from jax_roialign.module_config import MultiScaleConfig, RoIAlignConfig

__all__ = ["MultiScaleRoIAlign", "RoIAlign"]


class RoIAlign(nn.Module):
    """RoIAlign as a linen module (no parameters, no state).

    Attributes mirror the keywords of :func:`jax_roialign.roi_align`: ``output_size``
    (int or (out_h, out_w)), ``spatial_scale`` (box -> feature coordinates, e.g. 1/16),
    ``sampling_ratio`` (> 0 fixed samples per bin and axis, <= 0 adaptive), ``aligned``
    (half-pixel True, legacy False), ``mode`` ("avg", "max", "corner_max") and ``impl``
    (None, "xla" or "pallas").  A bad value raises ValueError / TypeError at construction.

    Call with NHWC ``features`` (N, H, W, C) and ``boxes`` [x1, y1, x2, y2] in input-image
    coordinates: per-image padded (N, R, 4) giving (N, R, out_h, out_w, C); or (K, 4) with
    ``batch_indices`` (K,) ints (optional when N == 1), or (K, 5) [batch_index, x1, y1, x2, y2],
    giving (K, out_h, out_w, C).  The result has the features' dtype; accumulation is float32
    (float64 for float64 features).  Differentiable w.r.t. features and boxes.
    """

    output_size: int | tuple[int, int]
    spatial_scale: float = 1.0
    sampling_ratio: int = 0
    aligned: bool = True
    mode: str = "avg"
    impl: str | None = None

    def __post_init__(self) -> None:
        _roi_align_config(self)  # validates
        super().__post_init__()

    def __call__(self, features: jax.Array, boxes: jax.Array, batch_indices: jax.Array | None = None) -> jax.Array:
        return _roi_align_config(self)(features, boxes, batch_indices)


class MultiScaleRoIAlign(nn.Module):
    """RoIAlign over FPN levels as a linen module (no parameters, no state).

    Attributes mirror the keywords of :func:`jax_roialign.multiscale_roi_align`:
    ``output_size``; ``spatial_scales`` (one per level, finest first, strictly decreasing)
    or, to infer them as torchvision does, ``image_size`` (height, width); ``sampling_ratio``,
    ``aligned``, ``mode``, ``impl`` as in :class:`RoIAlign`; and the level rule
    ``canonical_size``, ``canonical_level``, ``mapper`` ("torchvision" or "detectron2").
    A bad value raises ValueError / TypeError at construction.

    Call with ``features``, a sequence (finest first) or dict (in its order) of NHWC levels
    (N, H_l, W_l, C), and boxes as for :class:`RoIAlign`; each box is pooled from the level
    its size selects.  Returns (K, out_h, out_w, C) or (N, R, out_h, out_w, C), rows in input
    order, in the features' dtype (float32 accumulation, float64 for float64).
    """

    output_size: int | tuple[int, int]
    spatial_scales: Sequence[float] | None = None
    image_size: tuple[int, int] | None = None
    sampling_ratio: int = 0
    aligned: bool = True
    mode: str = "avg"
    canonical_size: float = 224.0
    canonical_level: int = 4
    mapper: str = "torchvision"
    impl: str | None = None

    def __post_init__(self) -> None:
        _multiscale_config(self)  # validates
        super().__post_init__()

    def __call__(
        self,
        features: Sequence[jax.Array] | Mapping[str, jax.Array],
        boxes: jax.Array,
        batch_indices: jax.Array | None = None,
        valid: jax.Array | None = None,
    ) -> jax.Array:
        return _multiscale_config(self)(features, boxes, batch_indices, valid)


def _roi_align_config(m: RoIAlign) -> RoIAlignConfig:
    return RoIAlignConfig.checked(m.output_size, m.spatial_scale, m.sampling_ratio, m.aligned, m.mode, m.impl)


def _multiscale_config(m: MultiScaleRoIAlign) -> MultiScaleConfig:
    return MultiScaleConfig.checked(
        m.output_size,
        m.spatial_scales,
        m.image_size,
        m.sampling_ratio,
        m.aligned,
        m.mode,
        m.canonical_size,
        m.canonical_level,
        m.mapper,
        m.impl,
    )
