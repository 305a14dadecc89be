"""Detectron2 presets: ROIAlign / ROIAlignV2 (half-pixel) and the ROIPooler level rule."""

from __future__ import annotations

from collections.abc import Sequence

import jax

from jax_roialign import multiscale, ops


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


def roi_pooler(
    x: Sequence[jax.Array],
    rois: jax.Array,
    output_size: int | tuple[int, int],
    scales: Sequence[float],
    sampling_ratio: int,
    *,
    aligned: bool = True,
    canonical_box_size: int = 224,
    canonical_level: int = 4,
    impl: str | None = None,
) -> jax.Array:
    """detectron2.modeling.poolers.ROIPooler with "ROIAlignV2" (aligned=True) or "ROIAlign" (aligned=False).

    x: NCHW levels, finest first; rois (K, 5).  Levels use Detectron2's rule (1e-8
    inside the log).  Returns (K, C, out_h, out_w).
    """
    return multiscale.multiscale_roi_align(
        x,
        rois,
        output_size,
        spatial_scales=scales,
        sampling_ratio=sampling_ratio,
        aligned=aligned,
        canonical_size=canonical_box_size,
        canonical_level=canonical_level,
        mapper="detectron2",
        data_format="NCHW",
        impl=impl,
    )


def paste_masks_in_image(
    masks: jax.Array, boxes: jax.Array, image_shape: tuple[int, int], threshold: float = 0.5
) -> jax.Array:
    """detectron2.layers.mask_ops.paste_masks_in_image (its CPU arithmetic): (N, M, M) into (N, H, W).

    threshold >= 0 gives bool ``mask >= threshold``; < 0 gives uint8 ``mask * 255``
    truncated.  Every pixel centre is read from the mask by grid_sample (bilinear, zero
    padding) inside Detectron2's per-mask window (section 9).
    """
    return ops.paste_masks(masks, boxes, tuple(image_shape), convention="detectron2", threshold=threshold)
