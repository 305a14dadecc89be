"""mmcv.ops.roi_align preset: NCHW, (K, 5) rois, half-pixel by default, interpolated max."""

from __future__ import annotations

import jax

from jax_roialign import ops
from jax_roialign.conventions import check_choice


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
