"""ONNX RoiAlign (opsets 10, 16, 22), Resize (10 to 19) and Upsample (7, 9) with onnxruntime's numbers.

onnxruntime is the reference, not ``onnx.reference``: the latter applies half_pixel
to opset-10 models, while opset 10 (and onnxruntime) is always legacy.  ``max``
is onnxruntime's: per sample the largest of the four weighted corner terms, not the
interpolated value (``mode="corner_max"`` of :func:`jax_roialign.roi_align`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax_roialign import canonical, ops
from jax_roialign.conventions import RoIAlignSpec, check_choice
from jax_roialign.core import resize as tables
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


RESIZE_OPSETS = (10, 11, 13, 18, 19)
UPSAMPLE_OPSETS = (7, 9)


def _spatial(values, name: str, layout: str, others: tuple, cast) -> tuple:
    """The (h, w) entries of an ONNX per-axis vector: 2 entries (the spatial axes only) or all 4,
    whose N and C entries must equal ``others`` (1 for scales, the input's N and C for sizes)."""
    values = tuple(cast(v) for v in jnp.asarray(values).reshape(-1).tolist())
    if len(values) == 2:
        return values
    if len(values) != 4:
        raise ValueError(f"{name} must have 2 (spatial) or 4 entries, got {values!r}")
    h, w, rest = (2, 3, (0, 1)) if layout == "NCHW" else (1, 2, (0, 3))
    if tuple(values[i] for i in rest) != others:
        raise ValueError(f"{name} may resize only the spatial axes of a {layout} tensor, got {values!r}")
    return values[h], values[w]


def _roi(roi, layout: str, mode: str) -> tuple[float, float, float, float]:
    """(y1, x1, y2, x2) of an ONNX roi: 4 spatial entries, or 8 (starts then ends of all axes)."""
    if roi is None or mode != "tf_crop_and_resize":
        return (0.0, 0.0, 1.0, 1.0)
    values = tuple(float(v) for v in jnp.asarray(roi).reshape(-1).tolist())
    if len(values) == 4:
        return values
    if len(values) != 8:
        raise ValueError(f"roi must have 4 (y1, x1, y2, x2) or 8 entries, got {values!r}")
    h, w = (2, 3) if layout == "NCHW" else (1, 2)
    return values[h], values[w], values[4 + h], values[4 + w]


def resize(
    X: jax.Array,
    roi: jax.Array | None = None,
    scales: jax.Array | None = None,
    sizes: jax.Array | None = None,
    *,
    mode: str = "nearest",
    coordinate_transformation_mode: str = "half_pixel",
    cubic_coeff_a: float = -0.75,
    exclude_outside: int = 0,
    extrapolation_value: float = 0.0,
    nearest_mode: str = "round_prefer_floor",
    antialias: int = 0,
    opset: int = 19,
    layout: str = "NCHW",
) -> jax.Array:
    """onnxruntime's Resize (opsets 10, 11, 13, 18, 19) on a 4-D tensor (``docs/conventions.md`` 8.2).

    scales / sizes / roi are the node's inputs: 4 entries in X's axis order (the N and C
    entries must leave those axes alone) or just the 2 spatial ones; layout says which
    axes are spatial ("NCHW": 2, 3; "NHWC": 1, 2).  Attributes and defaults are ONNX's;
    opset 10 is asymmetric with Resize-10's nearest rounding (ceil when downsampling, else
    truncation), antialias needs opset 18 and half_pixel_symmetric opset 19.  Floating X
    computes in float32 (float64 for float64); uint8 X follows onnxruntime: nearest copies,
    linear rounds as its NCHW (float32, truncated) or NHWC (10-bit integer) kernel,
    antialias with 22-bit weights in two passes; uint8 cubic without antialias fails in
    onnxruntime and raises here.  Extrapolated uint8 outputs take uint8(extrapolation_value).
    Returns X's dtype and layout.
    """
    if opset not in RESIZE_OPSETS:
        raise ValueError(f"opset must be one of Resize's versions {RESIZE_OPSETS}, got {opset!r}")
    check_choice(layout, "layout", ("NCHW", "NHWC"))
    if opset == 10:
        check_choice(mode, "mode", ("nearest", "linear"))
        coordinate_transformation_mode, nearest_mode = "asymmetric", "simple"
    else:
        modes = tables.COORDINATE_MODES if opset >= 19 else tables.COORDINATE_MODES[:1] + tables.COORDINATE_MODES[2:]
        check_choice(coordinate_transformation_mode, "coordinate_transformation_mode", modes)
        check_choice(nearest_mode, "nearest_mode", tables.NEAREST_MODES)
        check_choice(mode, "mode", tables.ONNX_METHODS)
    if antialias and opset < 18:
        raise ValueError(f"antialias needs opset 18 or later, got opset {opset}")
    return _resize(
        X, roi, scales, sizes, mode, coordinate_transformation_mode, nearest_mode, float(cubic_coeff_a),
        bool(exclude_outside), float(extrapolation_value), bool(antialias), layout,
    )  # fmt: skip


def upsample(X: jax.Array, scales: jax.Array, *, mode: str = "nearest", opset: int = 9) -> jax.Array:
    """onnxruntime's Upsample (opsets 7 and 9), NCHW: asymmetric coordinates, output floor(in * scale).

    Nearest truncates the source coordinate (Resize-10's rule); linear as Resize-10.
    """
    if opset not in UPSAMPLE_OPSETS:
        raise ValueError(f"opset must be one of Upsample's versions {UPSAMPLE_OPSETS}, got {opset!r}")
    check_choice(mode, "mode", ("nearest", "linear"))
    return _resize(X, None, scales, None, mode, "asymmetric", "simple", -0.75, False, 0.0, False, "NCHW")


def _resize(X, roi, scales, sizes, mode, ctm, nearest_mode, a, exclude_outside, fill, antialias, layout) -> jax.Array:
    x = canonical.canonical_images(X, layout, name="X")
    (n_h, n_w), integer = x.shape[1:3], jnp.issubdtype(x.dtype, jnp.integer)
    if integer and (x.dtype != jnp.uint8 and mode != "nearest"):
        raise TypeError(f"onnxruntime resizes integer X only as uint8 (or in nearest mode), got {x.dtype}")
    if (scales is None) == (sizes is None):
        raise ValueError("exactly one of scales and sizes must be given")
    if sizes is not None:
        out_h, out_w = _spatial(sizes, "sizes", layout, (x.shape[0], x.shape[3]), int)
        scale_h, scale_w = float(tables.f32(out_h) / tables.f32(n_h)), float(tables.f32(out_w) / tables.f32(n_w))
    else:
        scale_h, scale_w = _spatial(scales, "scales", layout, (1.0, 1.0), float)
        out_h, out_w = tables.onnx_output_size(n_h, scale_h), tables.onnx_output_size(n_w, scale_w)
    if min(out_h, out_w) < 1:
        raise ValueError(f"the output would be empty: {(out_h, out_w)}")
    if (out_h, out_w) == (n_h, n_w):  # onnxruntime copies an input of the output's shape
        return jnp.asarray(X)
    y1, x1, y2, x2 = _roi(roi, layout, ctm)
    antialias = antialias and mode != "nearest"
    if integer and mode != "nearest":
        if mode == "cubic" and not antialias:
            raise TypeError("onnxruntime 1.32 has no uint8 cubic Resize without antialias (its kernel fails)")
        byte = int(fill) & 0xFF
        if antialias:
            common = (mode, ctm, nearest_mode, a, exclude_outside, True)
            rule = tables.FixedPointRule(
                tables.quantized(tables.onnx_axis(n_h, out_h, scale_h, *common, (y1, y2)), 22),
                tables.quantized(tables.onnx_axis(n_w, out_w, scale_w, *common, (x1, x2)), 22),
                byte,
            )
        elif layout == "NHWC" and tables.f32(scale_h) == tables.f32(1):
            # Scales (1, 1, s, 1): onnxruntime runs its NCHW kernel with (W, C) as the image.
            return _nhwc_width_only(x, out_w, scale_w, ctm, (x1, x2), byte)
        else:
            rule = tables.OnnxLinearUint8Rule(
                tables.onnx_linear_uint8_axis(n_h, out_h, scale_h, ctm, (y1, y2)),
                tables.onnx_linear_uint8_axis(n_w, out_w, scale_w, ctm, (x1, x2)),
                layout,
                byte,
            )
        return canonical.output_layout(ops.resize_integer_canonical(x, rule), layout)
    common = (mode, ctm, nearest_mode, a, exclude_outside, antialias)
    table_h = tables.onnx_axis(n_h, out_h, scale_h, *common, (y1, y2))
    table_w = tables.onnx_axis(n_w, out_w, scale_w, *common, (x1, x2))
    fill = float(int(fill) & 0xFF) if integer else fill
    return canonical.output_layout(ops.resize_canonical(x, table_h, table_w, fill), layout)


def _nhwc_width_only(x: jax.Array, out_w: int, scale_w: float, ctm: str, roi_w, fill: int) -> jax.Array:
    """uint8 NHWC linear with only the width resized: onnxruntime's NCHW kernel over (W, C) images."""
    n, h, w, c = x.shape
    rule = tables.OnnxLinearUint8Rule(
        tables.onnx_linear_uint8_axis(w, out_w, scale_w, ctm, roi_w),
        tables.onnx_linear_uint8_axis(c, c, 1.0, "half_pixel"),
        "NCHW",
        fill,
    )
    y = ops.resize_integer_canonical(x.reshape(n * h, w, c, 1), rule)
    return y.reshape(n, h, out_w, c)
