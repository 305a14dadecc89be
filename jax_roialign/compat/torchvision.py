"""torchvision.ops signatures: NCHW features, (K, 5) boxes or a list of per-image (L, 4) boxes.

roi_align, roi_pool, multi_scale_roi_align, the position-sensitive ps_roi_align and
ps_roi_pool, and Mask R-CNN's paste_masks_in_image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

from jax_roialign import canonical, multiscale, ops
from jax_roialign.conventions import RoIAlignSpec, output_size_pair
from jax_roialign.core.bins import box_bins, compute_dtype

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


def _empty_bin_values(rois: jax.Array, features_dtype: jnp.dtype, spec: RoIAlignSpec) -> tuple[jax.Array, jax.Array]:
    """(value, count), each (K,): torchvision's ps_roi_align value 0 / (gh * gw) of a bin
    without samples, and its sample count gh * gw (adaptive grids; > 0 where there are samples).

    torchvision divides the (empty) sum by gh * gw with no max(., 1): NaN for a zero
    grid, -0.0 for a negative one (inverted in one axis by more than a bin).
    """
    by, bx = box_bins(rois.astype(compute_dtype(features_dtype)), spec)
    count = by.grid * bx.grid
    return jnp.zeros_like(count) / count, count


def ps_roi_align(
    input: jax.Array,
    boxes: BoxesArg,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    *,
    impl: str | None = None,
) -> jax.Array:
    """torchvision.ops.ps_roi_align: input (N, C, H, W); returns (K, C / (out_h * out_w), out_h, out_w).

    :func:`jax_roialign.ps_roi_align` with torchvision's defaults (adaptive sampling) and
    its value for bins without samples: an adaptive grid of size 0 (a box of zero width
    or height, or inverted by less than a bin) gives NaN (0 / 0) and a negative one
    -0.0, as torchvision computes them; those bins pass no gradient.  Output channel c
    at bin (p, q) reads input channel ``(c * out_h + p) * out_w + q``.  Gradients w.r.t.
    input match torchvision's backward; gradients w.r.t. boxes are available too.  impl as
    in :func:`jax_roialign.ps_roi_align` (None: XLA; "pallas": the avg RoIAlign kernels).
    """
    coords, idx = _boxes_and_indices(boxes)
    x = canonical.canonical_features(input, "NCHW", name="input")
    b = canonical.canonical_boxes(coords, idx, x.shape[0])
    spec = RoIAlignSpec(output_size_pair(output_size), spatial_scale, sampling_ratio, True, "avg")
    out = ops.ps_roi_align_canonical(x, b.coords, b.batch_indices, spec, impl)
    if spec.sampling_ratio <= 0:
        empty, count = _empty_bin_values(jax.lax.stop_gradient(b.coords), out.dtype, spec)
        out = jnp.where(count[:, None, None, None] > 0, out, empty[:, None, None, None].astype(out.dtype))
    return canonical.output_layout(out, "NCHW")


def ps_roi_pool(
    input: jax.Array,
    boxes: BoxesArg,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
) -> jax.Array:
    """torchvision.ops.ps_roi_pool: input (N, C, H, W); returns (K, C / (out_h * out_w), out_h, out_w).

    The forward pass is torchvision's (bins clipped to [0, H - 1] x [0, W - 1]).  The
    gradient w.r.t. input is the derivative of that forward pass; torchvision's own
    backward spreads over bins clipped to [0, H] x [0, W] with corners rounded in
    float32, so it differs for bins that reach the last row or column (see
    ``docs/conventions.md`` section 6).
    """
    coords, idx = _boxes_and_indices(boxes)
    return ops.ps_roi_pool(
        input, coords, output_size, batch_indices=idx, spatial_scale=spatial_scale, data_format="NCHW"
    )


def paste_masks_in_image(masks: jax.Array, boxes: jax.Array, img_shape: tuple[int, int], padding: int = 1) -> jax.Array:
    """torchvision.models.detection.roi_heads.paste_masks_in_image: (N, 1, M, M) soft masks into (N, 1, H, W).

    Each mask is padded by ``padding`` zero pixels, its box scaled about the centre by
    (M + 2 padding) / M and truncated to integers, and the padded mask resized by bilinear
    interpolate to the box's pixel size and written inside the image (section 9).
    """
    masks = jnp.asarray(masks)
    if masks.ndim != 4 or masks.shape[1] != 1:
        raise ValueError(f"masks must have shape (N, 1, M, M), got shape {masks.shape}")
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, got {padding!r}")
    limits_shape = output_size_pair(tuple(img_shape), name="img_shape")
    boxes = jnp.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape != (masks.shape[0], 4):
        raise ValueError(f"boxes must have shape ({masks.shape[0]}, 4), got shape {boxes.shape}")
    limits = jnp.broadcast_to(jnp.asarray(limits_shape, jnp.int32), (masks.shape[0], 2))
    out = ops.paste_masks_canonical(masks[:, 0], boxes, limits, limits_shape, "torchvision", None, padding)
    return out[:, None]
