"""torchvision.ops signatures: NCHW features, (K, 5) boxes or a list of per-image (L, 4) boxes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

from jax_roialign import multiscale, ops

BoxesArg = jax.Array | Sequence[jax.Array]


def _boxes_and_indices(boxes: BoxesArg) -> tuple[jax.Array, jax.Array | None]:
    """torchvision's box forms as (boxes, batch_indices): a list of (L_i, 4) becomes (K, 4) + indices."""
    if isinstance(boxes, (list, tuple)):
        for i, b in enumerate(boxes):
            if jnp.ndim(b) != 2 or jnp.shape(b)[1] != 4:
                raise ValueError(f"boxes[{i}] must have shape (L, 4), got shape {jnp.shape(b)}")
        coords = jnp.concatenate([jnp.asarray(b) for b in boxes], axis=0)
        idx = jnp.concatenate([jnp.full((jnp.shape(b)[0],), i, jnp.int32) for i, b in enumerate(boxes)])
        return coords, idx
    boxes = jnp.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape[1] != 5:
        raise ValueError(f"boxes must be a (K, 5) array or a list of (L, 4) arrays, got shape {boxes.shape}")
    return boxes, None


def roi_align(
    input: jax.Array,
    boxes: BoxesArg,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
    *,
    impl: str | None = None,
) -> jax.Array:
    """torchvision.ops.roi_align: input (N, C, H, W); returns (K, C, out_h, out_w).

    Defaults are torchvision's: legacy coordinates (aligned=False) and adaptive
    sampling (sampling_ratio=-1).  Gradients w.r.t. input match torchvision's
    backward; gradients w.r.t. boxes are available too (torchvision has none).
    """
    coords, idx = _boxes_and_indices(boxes)
    return ops.roi_align(
        input,
        coords,
        output_size,
        batch_indices=idx,
        spatial_scale=spatial_scale,
        sampling_ratio=sampling_ratio,
        aligned=aligned,
        data_format="NCHW",
        impl=impl,
    )


def roi_pool(
    input: jax.Array,
    boxes: BoxesArg,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
) -> jax.Array:
    """torchvision.ops.roi_pool: input (N, C, H, W); returns (K, C, out_h, out_w)."""
    coords, idx = _boxes_and_indices(boxes)
    return ops.roi_pool(input, coords, output_size, batch_indices=idx, spatial_scale=spatial_scale, data_format="NCHW")


def multi_scale_roi_align(
    x: Mapping[str, jax.Array],
    boxes: Sequence[jax.Array],
    image_shapes: Sequence[tuple[int, int]],
    *,
    featmap_names: Sequence[str],
    output_size: int | tuple[int, int],
    sampling_ratio: int,
    canonical_scale: int = 224,
    canonical_level: int = 4,
) -> jax.Array:
    """torchvision.ops.MultiScaleRoIAlign: x a dict of NCHW levels, boxes a list of (L, 4) per image.

    As torchvision: only the levels named in featmap_names are used (finest first);
    scales are inferred from the largest image height and width in image_shapes;
    levels come from the torchvision level mapper; pooling is legacy (aligned=False).
    Returns (K, C, out_h, out_w), rows in the order of the concatenated boxes.
    """
    missing = [name for name in featmap_names if name not in x]
    if missing:
        raise ValueError(f"featmap_names {missing} are not keys of x {list(x)}")
    if len(image_shapes) == 0:
        raise ValueError("image_shapes must hold one (height, width) per image, got none")
    image_size = (max(s[0] for s in image_shapes), max(s[1] for s in image_shapes))
    levels = [x[name] for name in featmap_names]
    coords, idx = _boxes_and_indices(list(boxes))
    return multiscale.multiscale_roi_align(
        levels,
        coords,
        output_size,
        batch_indices=idx,
        image_size=image_size,
        sampling_ratio=sampling_ratio,
        aligned=False,
        canonical_size=canonical_scale,
        canonical_level=canonical_level,
        mapper="torchvision",
        data_format="NCHW",
    )
