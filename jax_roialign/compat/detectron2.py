"""Detectron2 presets: ROIAlign / ROIAlignV2 (half-pixel), ROIAlignRotated, and ROIPooler with its level rule."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from jax_roialign import canonical, multiscale, ops
from jax_roialign.conventions import RotatedSpec, check_choice, output_size_pair

POOLER_TYPES: tuple[str, ...] = ("ROIAlign", "ROIAlignV2", "ROIPool", "ROIAlignRotated")


def roi_align(
    input: jax.Array,
    rois: jax.Array,
    output_size: int | tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool = True,
    *,
    impl: str | None = None,
) -> jax.Array:
    """detectron2.layers.ROIAlign(output_size, spatial_scale, sampling_ratio, aligned)(input, rois).

    input (N, C, H, W), rois (K, 5); aligned=True is ROIAlignV2.  Returns (K, C, out_h, out_w).
    """
    return ops.roi_align(
        input,
        rois,
        output_size,
        spatial_scale=spatial_scale,
        sampling_ratio=sampling_ratio,
        aligned=aligned,
        data_format="NCHW",
        impl=impl,
    )


def _pooler_rois(rois: jax.Array, n_images: int, rotated: bool) -> canonical.Boxes:
    """Detectron2's pooler-format rows in canonical form: (K, 5) [batch, x1, y1, x2, y2], or
    (K, 6) [batch, cx, cy, w, h, angle_degrees] for rotated boxes (the shapes Detectron2 asserts)."""
    width, layout = (6, "[batch, cx, cy, w, h, angle_degrees]") if rotated else (5, "[batch, x1, y1, x2, y2]")
    shape = jnp.shape(rois)
    if len(shape) != 2 or shape[1] != width:
        raise ValueError(f"rois must have shape (K, {width}) {layout}, got shape {shape}")
    return canonical.canonical_boxes(rois, None, n_images, name="rois", coords=width - 1)


def roi_align_rotated(
    input: jax.Array,
    rois: jax.Array,
    output_size: int | tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    *,
    impl: str | None = None,
) -> jax.Array:
    """detectron2.layers.ROIAlignRotated(output_size, spatial_scale, sampling_ratio)(input, rois).

    input (N, C, H, W); rois (K, 6) [batch, cx, cy, w, h, angle_degrees], positive angles
    counter-clockwise on the displayed image.  Always half-pixel (the centre moves by
    -0.5 after scaling), no size clamp; sampling_ratio 0 is adaptive.  Returns (K, C,
    out_h, out_w).  Gradients reach input (as in Detectron2) and rois (Detectron2 has none).
    """
    x = canonical.canonical_features(input, "NCHW", name="input")
    b = _pooler_rois(rois, x.shape[0], rotated=True)
    spec = RotatedSpec(output_size_pair(output_size), spatial_scale, sampling_ratio)
    out = ops.roi_align_rotated_canonical(x, b.coords, b.batch_indices, spec, impl)
    return canonical.output_layout(out, "NCHW")


def roi_pooler(
    x: Sequence[jax.Array],
    rois: jax.Array,
    output_size: int | tuple[int, int],
    scales: Sequence[float],
    sampling_ratio: int,
    pooler_type: str = "ROIAlignV2",
    canonical_box_size: int = 224,
    canonical_level: int = 4,
    *,
    impl: str | None = None,
) -> jax.Array:
    """detectron2.modeling.poolers.ROIPooler(output_size, scales, sampling_ratio, pooler_type, ...)(x, boxes).

    x: NCHW levels, finest first; rois in ROIPooler's pooler format: (K, 5) [batch, x1,
    y1, x2, y2], or (K, 6) [batch, cx, cy, w, h, angle_degrees] for "ROIAlignRotated".
    pooler_type "ROIAlign" (legacy RoIAlign), "ROIAlignV2" (half-pixel), "ROIPool"
    (torchvision's RoIPool) or "ROIAlignRotated".  Each box is pooled from level
    ``floor(canonical_level + log2(sqrt(area) / canonical_box_size + 1e-8))`` clamped to
    the levels of scales (area = w * h for rotated boxes); with one level every box uses
    it.  Returns (K, C, out_h, out_w), rows in the order of rois.
    """
    check_choice(pooler_type, "pooler_type", POOLER_TYPES)
    if pooler_type in ("ROIAlign", "ROIAlignV2"):
        return multiscale.multiscale_roi_align(
            x,
            rois,
            output_size,
            spatial_scales=scales,
            sampling_ratio=sampling_ratio,
            aligned=pooler_type == "ROIAlignV2",
            canonical_size=canonical_box_size,
            canonical_level=canonical_level,
            mapper="detectron2",
            data_format="NCHW",
            impl=impl,
        )
    levels = [canonical.canonical_features(f, "NCHW", name=f"x[{i}]") for i, f in enumerate(x)]
    scales, _ = multiscale.check_level_config(scales, None, canonical_box_size, canonical_level, "detectron2")
    if len(scales) != len(levels):
        raise ValueError(f"scales must have one entry per level of x ({len(levels)}), got {scales!r}")
    size = output_size_pair(output_size)
    if pooler_type == "ROIPool":
        b = _pooler_rois(rois, levels[0].shape[0], rotated=False)
        area = (b.coords[:, 2] - b.coords[:, 0]) * (b.coords[:, 3] - b.coords[:, 1])

        def pool(level: jax.Array, scale: float, images: jax.Array) -> jax.Array:
            return ops.roi_pool_canonical(level, b.coords, images, size, scale)

    else:
        b = _pooler_rois(rois, levels[0].shape[0], rotated=True)
        area = b.coords[:, 2] * b.coords[:, 3]

        def pool(level: jax.Array, scale: float, images: jax.Array) -> jax.Array:
            spec = RotatedSpec(size, scale, sampling_ratio)
            return ops.roi_align_rotated_canonical(level, b.coords, images, spec, impl)

    level_of_box = multiscale.area_levels(
        area,
        min_level=round(-math.log2(scales[0])),
        max_level=round(-math.log2(scales[-1])),
        canonical_size=canonical_box_size,
        canonical_level=canonical_level,
        mapper="detectron2",
    )
    return canonical.output_layout(_sum_over_levels(levels, scales, level_of_box, b.batch_indices, pool), "NCHW")


def _sum_over_levels(
    levels: Sequence[jax.Array],
    scales: Sequence[float],
    level_of_box: jax.Array,
    batch_indices: jax.Array,
    pool: Callable[[jax.Array, float, jax.Array], jax.Array],
) -> jax.Array:
    """Every level pooled for every box, the boxes of other levels given batch index -1 (zeros), summed."""
    out = None
    for i, (level, scale) in enumerate(zip(levels, scales, strict=True)):
        pooled = pool(level, scale, jnp.where(level_of_box == i, batch_indices, -1))
        out = pooled if out is None else out + pooled
    return out


def paste_masks_in_image(
    masks: jax.Array, boxes: jax.Array, image_shape: tuple[int, int], threshold: float = 0.5
) -> jax.Array:
    """detectron2.layers.mask_ops.paste_masks_in_image (its CPU arithmetic): (N, M, M) into (N, H, W).

    threshold >= 0 gives bool ``mask >= threshold``; < 0 gives uint8 ``mask * 255``
    truncated.  Every pixel centre is read from the mask by grid_sample (bilinear, zero
    padding) inside Detectron2's per-mask window (section 9).
    """
    return ops.paste_masks(masks, boxes, tuple(image_shape), convention="detectron2", threshold=threshold)
