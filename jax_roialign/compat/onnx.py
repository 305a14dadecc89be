"""ONNX RoiAlign (opset 10 and 16) with onnxruntime's numbers.

onnxruntime is the reference, not ``onnx.reference``: the latter applies half_pixel
to opset-10 models, while opset 10 (and onnxruntime) is always legacy.  ``max``
is onnxruntime's: per sample the largest of the four weighted corner terms, not the
interpolated value (``mode="corner_max"`` of :func:`jax_roialign.roi_align`).
"""

from __future__ import annotations

import jax

from jax_roialign import canonical
from jax_roialign.conventions import RoIAlignSpec, check_choice
from jax_roialign.ops import roi_align_canonical

MODES = {"avg": "avg", "max": "corner_max"}
TRANSFORMS = {"half_pixel": True, "output_half_pixel": False}
OPSETS = (10, 16, 22)  # 22 only widens the types; its arithmetic is opset 16's


def roi_align(
    X: jax.Array,
    rois: jax.Array,
    batch_indices: jax.Array,
    *,
    mode: str = "avg",
    output_height: int = 1,
    output_width: int = 1,
    sampling_ratio: int = 0,
    spatial_scale: float = 1.0,
    coordinate_transformation_mode: str = "half_pixel",
    opset: int = 16,
    impl: str | None = None,
) -> jax.Array:
    """onnxruntime's RoiAlign: X (N, C, H, W), rois (K, 4) [x1, y1, x2, y2], batch_indices (K,).

    opset 10 is always legacy (coordinate_transformation_mode is ignored, as the
    attribute does not exist there); opsets 16 and 22 map "half_pixel" to aligned=True and
    "output_half_pixel" to aligned=False.  sampling_ratio 0 is adaptive.  Returns
    (K, C, output_height, output_width) in X's dtype.
    """
    check_choice(mode, "mode", tuple(MODES))
    check_choice(coordinate_transformation_mode, "coordinate_transformation_mode", tuple(TRANSFORMS))
    if opset not in OPSETS:
        raise ValueError(f"opset must be one of RoiAlign's versions {OPSETS}, got {opset!r}")
    if isinstance(sampling_ratio, int) and sampling_ratio < 0:
        raise ValueError(f"sampling_ratio must be >= 0 in ONNX, got {sampling_ratio!r}")
    aligned = opset >= 16 and TRANSFORMS[coordinate_transformation_mode]
    spec = RoIAlignSpec((output_height, output_width), spatial_scale, sampling_ratio, aligned, MODES[mode])
    x = canonical.canonical_features(X, "NCHW", name="X")
    b = canonical.canonical_boxes(rois, batch_indices, x.shape[0], name="rois")
    out = roi_align_canonical(x, b.coords, b.batch_indices, spec, impl)
    return canonical.output_layout(out, "NCHW")
