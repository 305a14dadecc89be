"""Multi-level (FPN) RoIAlign with static shapes (conventions.md section 3).

torchvision's MultiScaleRoIAlign and Detectron2's ROIPooler gather each level's boxes
with a data-dependent ``nonzero``, which jit cannot trace.  Here every level is pooled
for every box with the boxes of other levels masked out (their batch index is set out
of range, so they read nothing and give zeros), and the levels are summed: static
shapes, one jit-compatible pass, output rows in input order.  The cost is one pooling
per level for each box.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jax_roialign import canonical
from jax_roialign.conventions import RoIAlignSpec, check_choice, check_spatial_scale, output_size_pair
from jax_roialign.ops import roi_align_canonical
from jax_roialign.xla.sampling import divide

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
    check_choice(mapper, "mapper", LEVEL_MAPPERS)
    boxes = boxes.astype(jnp.float32)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    ratio = divide(jnp.sqrt(area), canonical_size)
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


def multiscale_roi_align(
    features: Sequence[jax.Array] | Mapping[str, jax.Array],
    boxes: jax.Array,
    output_size: int | tuple[int, int],
    *,
    batch_indices: jax.Array | None = None,
    spatial_scales: Sequence[float] | None = None,
    image_size: tuple[int, int] | None = None,
    sampling_ratio: int = 0,
    aligned: bool = True,
    mode: str = "avg",
    canonical_size: float = 224.0,
    canonical_level: int = 4,
    mapper: str = "torchvision",
    impl: str | None = None,
) -> jax.Array:
    """RoIAlign over FPN levels, each box pooled from the level its size selects.

    Args:
      features: NHWC levels, finest first, as a sequence or a dict (in its order).
      boxes: (K, 4) with batch_indices, (K, 5), or per-image padded (N, R, 4), in
        input-image coordinates (see :func:`jax_roialign.roi_align`).
      spatial_scales: scale of each level; if None, inferred from image_size as
        torchvision does (2 ** round(log2(feature_h / image_h))).
      image_size: (height, width) of the input image, needed to infer scales.
      mapper: level assignment rule, "torchvision" or "detectron2" (see box_levels).
      Other arguments as in :func:`jax_roialign.roi_align`.

    Returns (K, out_h, out_w, C) (or (N, R, ...)), rows in input order.
    """
    levels = list(features.values()) if isinstance(features, Mapping) else list(features)
    if not levels:
        raise ValueError("features must hold at least one level, got none")
    levels = [canonical.canonical_features(f, "NHWC", name=f"features[{i}]") for i, f in enumerate(levels)]
    if spatial_scales is None:
        if image_size is None:
            raise ValueError("image_size is required when spatial_scales is None (scales are inferred from it)")
        spatial_scales = [infer_scale(f.shape[1:3], image_size) for f in levels]
    if len(spatial_scales) != len(levels):
        raise ValueError(f"spatial_scales must have one entry per level ({len(levels)}), got {spatial_scales!r}")
    scales = [check_spatial_scale(s, name="spatial_scales") for s in spatial_scales]
    min_level = round(-math.log2(scales[0]))
    max_level = round(-math.log2(scales[-1]))
    size = output_size_pair(output_size)
    b = canonical.canonical_boxes(boxes, batch_indices, levels[0].shape[0])
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
        mine = jnp.where(level == i, b.batch_indices, -1)
        pooled = roi_align_canonical(x, b.coords, mine, spec, impl)
        out = pooled if out is None else out + pooled
    return b.restore(out)
