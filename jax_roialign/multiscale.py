"""Multi-level (FPN) RoIAlign with static shapes (``docs/conventions.md`` section 3).

torchvision's MultiScaleRoIAlign and Detectron2's ROIPooler gather each level's boxes
with a data-dependent ``nonzero``, which jit cannot trace.  Here every level is pooled
for every box with the boxes of other levels masked out (their batch index is set out
of range, so they read nothing and give zeros), and the levels are summed: static
shapes, one jit-compatible pass, output rows in input order.  The cost is one pooling
per level for each box.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jax_roialign import canonical, ops
from jax_roialign.conventions import RoIAlignSpec, check_choice, check_spatial_scale, output_size_pair
from jax_roialign.core.sampling import divide

LEVEL_MAPPERS: tuple[str, ...] = ("torchvision", "detectron2")


def box_levels(
    boxes: jax.Array,
    *,
    min_level: int,
    max_level: int,
    canonical_size: float = 224.0,
    canonical_level: int = 4,
    mapper: str = "torchvision",
) -> jax.Array:
    """(K,) int32 index (0 = finest, min_level) of the FPN level of each (K, 4) box.

    level = floor(canonical_level + log2(sqrt(area) / canonical_size) + eps), clamped
    to [min_level, max_level]; "torchvision" adds eps = 1e-6 outside the log,
    "detectron2" adds 1e-8 inside it.  Computed in float32, as both frameworks do.
    """
    boxes = boxes.astype(jnp.float32)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return area_levels(
        area,
        min_level=min_level,
        max_level=max_level,
        canonical_size=canonical_size,
        canonical_level=canonical_level,
        mapper=mapper,
    )


def area_levels(
    area: jax.Array,
    *,
    min_level: int,
    max_level: int,
    canonical_size: float = 224.0,
    canonical_level: int = 4,
    mapper: str = "torchvision",
) -> jax.Array:
    """(K,) int32 level index (0 = min_level) of boxes of the given (K,) areas; the rule of :func:`box_levels`.

    Rotated boxes use area = w * h (Detectron2's RotatedBoxes.area()).
    """
    check_choice(mapper, "mapper", LEVEL_MAPPERS)
    ratio = divide(jnp.sqrt(area.astype(jnp.float32)), canonical_size)
    if mapper == "torchvision":
        level = jnp.floor(canonical_level + jnp.log2(ratio) + jnp.float32(1e-6))
    else:
        level = jnp.floor(canonical_level + jnp.log2(ratio + jnp.float32(1e-8)))
    return (jnp.clip(level, min_level, max_level) - min_level).astype(jnp.int32)


def infer_scale(feature_size: Sequence[int], image_size: Sequence[int]) -> float:
    """torchvision's inferred scale of a level: 2 ** round(log2(feature / image)) of the height.

    The log is taken in float32 and rounded half to even, as torch does.
    """
    approx = np.float32(feature_size[0]) / np.float32(image_size[0])
    return float(2.0 ** np.round(np.log2(np.float32(approx))))


def check_level_config(
    spatial_scales: Sequence[float] | None,
    image_size: tuple[int, int] | None,
    canonical_size: float,
    canonical_level: int,
    mapper: str,
) -> tuple[tuple[float, ...] | None, tuple[int, int] | None]:
    """The FPN-level arguments of multiscale_roi_align, checked; returns (spatial_scales, image_size) as tuples.

    spatial_scales must be a non-empty sequence of finite positive numbers, strictly
    decreasing (finest level first, as the level rule assumes); without it, image_size
    ((height, width), each an int >= 1) is required to infer them.
    """
    check_choice(mapper, "mapper", LEVEL_MAPPERS)
    check_spatial_scale(canonical_size, name="canonical_size")
    if isinstance(canonical_level, bool) or not isinstance(canonical_level, numbers.Integral):
        raise TypeError(f"canonical_level must be an int, got {canonical_level!r}")
    if image_size is None:
        size = None
    elif isinstance(image_size, (tuple, list)) and len(image_size) == 2:
        size = output_size_pair(image_size, name="image_size")
    else:
        raise TypeError(f"image_size must be a (height, width) pair of ints, got {image_size!r}")
    if spatial_scales is None:
        if size is None:
            raise ValueError("image_size is required when spatial_scales is None (scales are inferred from it)")
        return None, size
    if not isinstance(spatial_scales, (tuple, list)) or not spatial_scales:
        raise TypeError(f"spatial_scales must be a non-empty sequence of numbers, got {spatial_scales!r}")
    scales = tuple(check_spatial_scale(s, name="spatial_scales") for s in spatial_scales)
    if any(finer <= coarser for finer, coarser in itertools.pairwise(scales)):
        raise ValueError(f"spatial_scales must be strictly decreasing (finest level first), got {spatial_scales!r}")
    return scales, size


def multiscale_roi_align(
    features: Sequence[jax.Array] | Mapping[str, jax.Array],
    boxes: jax.Array,
    output_size: int | tuple[int, int],
    *,
    batch_indices: jax.Array | None = None,
    valid: jax.Array | None = None,
    spatial_scales: Sequence[float] | None = None,
    image_size: tuple[int, int] | None = None,
    sampling_ratio: int = 0,
    aligned: bool = True,
    mode: str = "avg",
    canonical_size: float = 224.0,
    canonical_level: int = 4,
    mapper: str = "torchvision",
    data_format: str = "NHWC",
    impl: str | None = None,
) -> jax.Array:
    """RoIAlign over FPN levels, each box pooled from the level its size selects.

    Args:
      features: levels (N, H_l, W_l, C) for "NHWC" or (N, C, H_l, W_l) for "NCHW",
        finest first, as a sequence or a dict (in its order).
      boxes: (K, 4) with batch_indices, (K, 5), or per-image padded (N, R, 4), in
        input-image coordinates (see :func:`jax_roialign.roi_align`).
      valid: optional bool mask of boxes.shape[:-1] ((N, R) for padded boxes, (K,)
        otherwise); a box marked False yields zeros, reads nothing and passes no
        gradient (for padding rows of per-image box tensors).
      spatial_scales: scale of each level, finest (largest) first, strictly
        decreasing; if None, inferred from image_size as torchvision does
        (2 ** round(log2(feature_h / image_h))).  The level range is
        [-log2(scales[0]), -log2(scales[-1])].
      image_size: (height, width) of the input image, needed to infer scales.
      mapper: level assignment rule, "torchvision" or "detectron2" (see box_levels).
      data_format: "NHWC" or "NCHW", for every level and the result.
      Other arguments as in :func:`jax_roialign.roi_align`.

    Returns (K, out_h, out_w, C) for NHWC or (K, C, out_h, out_w) for NCHW (or
    (N, R, ...)), rows in input order.
    """
    levels = list(features.values()) if isinstance(features, Mapping) else list(features)
    if not levels:
        raise ValueError("features must hold at least one level, got none")
    levels = [canonical.canonical_features(f, data_format, name=f"features[{i}]") for i, f in enumerate(levels)]
    scales, size_hw = check_level_config(spatial_scales, image_size, canonical_size, canonical_level, mapper)
    if scales is None:
        scales = tuple(infer_scale(f.shape[1:3], size_hw) for f in levels)
    if len(scales) != len(levels):
        raise ValueError(f"spatial_scales must have one entry per level ({len(levels)}), got {spatial_scales!r}")
    min_level = round(-math.log2(scales[0]))
    max_level = round(-math.log2(scales[-1]))
    size = output_size_pair(output_size)
    b = canonical.canonical_boxes(boxes, batch_indices, levels[0].shape[0])
    image_of_box = b.batch_indices if valid is None else jnp.where(_valid_mask(valid, boxes), b.batch_indices, -1)
    level = box_levels(
        b.coords,
        min_level=min_level,
        max_level=max_level,
        canonical_size=canonical_size,
        canonical_level=canonical_level,
        mapper=mapper,
    )
    out = None
    for i, (x, scale) in enumerate(zip(levels, scales, strict=False)):
        spec = RoIAlignSpec(size, scale, sampling_ratio, aligned, mode)
        mine = jnp.where(level == i, image_of_box, -1)
        pooled = ops.roi_align_canonical(x, b.coords, mine, spec, impl)
        out = pooled if out is None else out + pooled
    return b.restore(canonical.output_layout(out, data_format))


def _valid_mask(valid: jax.Array, boxes: jax.Array) -> jax.Array:
    """valid flattened to (K,) bool, after checking that its shape is boxes.shape[:-1]."""
    valid = jnp.asarray(valid)
    if valid.shape != jnp.shape(boxes)[:-1]:
        raise ValueError(f"valid must have shape {jnp.shape(boxes)[:-1]} (boxes.shape[:-1]), got {valid.shape}")
    if valid.dtype != jnp.bool_:
        raise TypeError(f"valid must be a bool array, got dtype {valid.dtype}")
    return valid.reshape(-1)
