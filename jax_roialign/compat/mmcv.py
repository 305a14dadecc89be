"""mmcv.ops presets: roi_align (half-pixel by default, interpolated max), roi_align_rotated, roi_pool."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax_roialign import canonical, ops
from jax_roialign.conventions import RotatedSpec, check_choice, check_spatial_scale, output_size_pair


def roi_align(
    input: jax.Array,
    rois: jax.Array,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = 0,
    pool_mode: str = "avg",
    aligned: bool = True,
    *,
    impl: str | None = None,
) -> jax.Array:
    """mmcv's RoIAlign: returns (K, C, out_h, out_w).

    pool_mode "max" is the max of interpolated samples.  One documented difference:
    a bin with no samples (adaptive grid of a zero-size aligned box) gives 0 here,
    where mmcv's max mode leaves -FLT_MAX.
    """
    check_choice(pool_mode, "pool_mode", ("avg", "max"))
    return ops.roi_align(
        input,
        rois,
        output_size,
        spatial_scale=spatial_scale,
        sampling_ratio=sampling_ratio,
        aligned=aligned,
        mode=pool_mode,
        data_format="NCHW",
        impl=impl,
    )


def _rows(rois: jax.Array, width: int, layout: str) -> jax.Array:
    """rois, after checking that it has mmcv's shape (K, width)."""
    shape = jnp.shape(rois)
    if len(shape) != 2 or shape[1] != width:
        raise ValueError(f"rois must have shape (K, {width}) {layout}, got shape {shape}")
    return rois


def roi_align_rotated(
    input: jax.Array,
    rois: jax.Array,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = 0,
    aligned: bool = True,
    clockwise: bool = False,
    *,
    impl: str | None = None,
) -> jax.Array:
    """mmcv.ops.roi_align_rotated: input (N, C, H, W), rois (K, 6) [batch, cx, cy, w, h, angle].

    The angle is in **radians** (Detectron2 and :func:`jax_roialign.roi_align_rotated`
    take degrees); clockwise=True negates it.  aligned=True is Detectron2's arithmetic;
    aligned=False drops the half-pixel offset and clamps the scaled width and height to
    >= 1.  Adaptive grids (sampling_ratio 0) take ``ceilf`` of the size over the output
    size, i.e. the quotient rounded to float32 first, as mmcv's kernels do (this differs
    from Detectron2 only for float64 inputs).  Returns (K, C, out_h, out_w).
    """
    x = canonical.canonical_features(input, "NCHW", name="input")
    b = canonical.canonical_boxes(_rows(rois, 6, "[batch, cx, cy, w, h, angle]"), None, x.shape[0], "rois", coords=5)
    spec = RotatedSpec(
        output_size_pair(output_size),
        spatial_scale,
        sampling_ratio,
        aligned,
        clockwise,
        angle_unit="radians",
        float32_grid=True,
    )
    out = ops.roi_align_rotated_canonical(x, b.coords, b.batch_indices, spec, impl)
    return canonical.output_layout(out, "NCHW")


def roi_pool(
    input: jax.Array, rois: jax.Array, output_size: int | tuple[int, int], spatial_scale: float = 1.0
) -> jax.Array:
    """mmcv.ops.roi_pool: input (N, C, H, W), rois (K, 5) [batch, x1, y1, x2, y2]; returns (K, C, out_h, out_w).

    mmcv's bins (``docs/conventions.md`` section 7), not torchvision's: no rounding of
    the corners, ``x2 + 1`` before scaling, bin q covering cells
    ``[floor(q * bin_w + x1 * s), ceil((q + 1) * bin_w + x1 * s))`` clipped to the map,
    the max over it (0 for an empty bin, first maximum for the gradient).  A box of
    size <= 0 after scaling gives zeros and, here, no gradient (mmcv's kernel leaves its
    argmax at 0 and sends its gradient to pixel (0, 0)).
    """
    x = canonical.canonical_features(input, "NCHW", name="input")
    b = canonical.canonical_boxes(_rows(rois, 5, "[batch, x1, y1, x2, y2]"), None, x.shape[0], name="rois")
    out = ops.roi_pool_canonical(
        x, b.coords, b.batch_indices, output_size_pair(output_size), check_spatial_scale(spatial_scale), "mmcv"
    )
    return canonical.output_layout(out, "NCHW")
