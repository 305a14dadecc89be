"""The public ops and the choice of implementation: the only module that knows both ``xla`` and ``kernels``.

Every public op is three steps: its arguments checked into a static description (a
:class:`~jax_roialign.conventions.RoIAlignSpec`, an output size, ...), its inputs put in
canonical form once (``jax_roialign.canonical``), and a ``*_canonical`` function that
runs an implementation on canonical inputs.  ``checked``, ``multiscale`` and ``compat``
call the ``*_canonical`` functions directly, so nothing is canonicalized twice.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from jax_roialign import canonical, kernels, xla
from jax_roialign.conventions import (
    RoIAlignSpec,
    RotatedSpec,
    check_bool,
    check_choice,
    check_finite,
    check_spatial_scale,
    output_size_pair,
    scale_pair,
)
from jax_roialign.core import guards, position_sensitive
from jax_roialign.core import resize as tables
from jax_roialign.core.bins import compute_dtype
from jax_roialign.core.guards import images_in_range
from jax_roialign.xla import paste_masks as xla_paste
from jax_roialign.xla import resize as xla_resize

IMPLS: tuple[str, ...] = ("xla", "pallas", "cpu")


_xla_roi_align = jax.jit(xla.roi_align, static_argnames="spec")


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _pallas_roi_align(features, boxes, batch_indices, spec):
    """The kernels' RoIAlign, differentiable in the features (the kernels' own linear map)
    and in the boxes (the XLA path's derivative: the kernels hold no box derivative)."""
    return kernels.roi_align(features, boxes, batch_indices, spec)


@functools.partial(_pallas_roi_align.defjvp, symbolic_zeros=True)
def _pallas_roi_align_jvp(spec, primals, tangents):
    features, boxes, batch_indices = primals
    features_dot, boxes_dot, _ = tangents
    perturbed = not isinstance(features_dot, SymbolicZero)
    out, tangent = kernels.roi_align_jvp(features, boxes, batch_indices, spec, features_dot if perturbed else None)
    if not isinstance(boxes_dot, SymbolicZero):
        _, box_tangent = jax.jvp(
            lambda b: _xla_roi_align(features, b, batch_indices, spec=spec), (boxes,), (boxes_dot,)
        )
        tangent = box_tangent if tangent is None else tangent + box_tangent
    return out, tangent


_ROI_ALIGN_IMPLS: dict[str, Callable] = {
    "xla": _xla_roi_align,
    "pallas": _pallas_roi_align,
    "cpu": jax.jit(kernels.cpu_roi_align, static_argnames="spec"),
}


def _no_kernel(op: str, kind: str) -> Callable:
    """The kernel entry of an op without a kernel of this kind: it declines, so that impl=None falls back to XLA."""

    def decline(*args, **kwargs):
        raise NotImplementedError(f"{op} has no {kind} kernel yet; use impl='xla' (impl=None does)")

    return decline


@functools.partial(jax.jit, static_argnames="spec")
def _pallas_ps_roi_align(features, boxes, batch_indices, spec):
    """Position-sensitive RoIAlign on the avg RoIAlign kernels, with the contract of ``xla.ps_roi_align``.

    Bin (p, q) of box k is a one-bin avg RoIAlign of position map (image, p, q): the
    boxes become K * out_h * out_w one-bin boxes (``position_sensitive.bin_boxes``, the
    same samples up to coordinate rounding) pooled by :func:`_pallas_roi_align`, so the
    features' derivative is the kernels' and the boxes' is the XLA path's, chained
    through the bin boxes' arithmetic.
    """
    k = boxes.shape[0]
    out_h, out_w = spec.output_size
    boxes, batch_indices, finite = guards.isolate_nonfinite_boxes(
        boxes.astype(compute_dtype(features.dtype)), batch_indices
    )
    maps = position_sensitive.position_maps(features, spec.output_size)
    bin_boxes = position_sensitive.bin_boxes(boxes, spec).reshape(k * out_h * out_w, 4)
    images = position_sensitive.bin_box_images(batch_indices, features.shape[0], spec.output_size).reshape(-1)
    out = _pallas_roi_align(maps, bin_boxes, images, position_sensitive.bin_box_spec(spec))
    return guards.mark_nonfinite(out.reshape(k, out_h, out_w, maps.shape[-1]), finite)


# No rotated kernel: a rotated box's samples share no rows or columns of the map, so the
# separable avg kernels (a row table times a column table per bin) do not apply.
_ROI_ALIGN_ROTATED_IMPLS: dict[str, Callable] = {
    "xla": jax.jit(xla.roi_align_rotated, static_argnames="spec"),
    "pallas": _no_kernel("roi_align_rotated", "Pallas"),
    "cpu": _no_kernel("roi_align_rotated", "CPU"),
}
_PS_ROI_ALIGN_IMPLS: dict[str, Callable] = {
    "xla": jax.jit(xla.ps_roi_align, static_argnames="spec"),
    "pallas": _pallas_ps_roi_align,
    "cpu": _no_kernel("ps_roi_align", "CPU"),
}


def check_impl(impl: str | None) -> str | None:
    """impl if it is None or one of IMPLS, else a ValueError naming it."""
    return None if impl is None else check_choice(impl, "impl", IMPLS)


def _impl_order(impl: str | None, dtype) -> tuple[str, ...]:
    """Implementations to try, in order: the one asked for; or, for impl=None, the kernels that apply, then XLA.

    impl=None runs the CPU kernels first when the default device is a CPU and they
    build here (``kernels.cpu_available``: a C++ compiler; programs using them lower to
    plain JAX for ``jax.export`` and other platforms), the Pallas kernels first only on
    a device kind where a run on that hardware has recorded them as correct and faster
    (``kernels/verified_devices.json``, written by the device check; empty until a GPU
    or TPU has run it), and only for calls they support there; XLA otherwise, and
    wherever they decline.  The device is the default one (``jax.devices()[0]``): a
    program compiled ahead of time for other hardware takes XLA.
    """
    if impl is not None:
        return (check_impl(impl),)
    device = jax.devices()[0]
    if device.platform == "cpu" and kernels.cpu_available():
        return ("cpu", "xla")
    if kernels.is_verified(device.device_kind) and kernels.supported(device.platform, dtype):
        return ("pallas", "xla")
    return ("xla",)


def roi_align_canonical(
    features: jax.Array,
    boxes: jax.Array,
    batch_indices: jax.Array,
    spec: RoIAlignSpec,
    impl: str | None = None,
) -> jax.Array:
    """RoIAlign of canonical inputs ((N, H, W, C), (K, 4), (K,)) with implementation choice.

    With impl=None an implementation that raises NotImplementedError for this call
    hands over to the next one; an explicitly requested impl raises.
    """
    return _dispatch(_ROI_ALIGN_IMPLS, impl, features, boxes, batch_indices, spec)


def _dispatch(impls: dict[str, Callable], impl: str | None, features, boxes, batch_indices, spec) -> jax.Array:
    """impls[name](features, boxes, batch_indices, spec) for the first implementation that accepts the call."""
    order = _impl_order(impl, features.dtype)
    for name in order:
        try:
            return impls[name](features, boxes, batch_indices, spec)
        except NotImplementedError:
            if name == order[-1]:
                raise
    raise AssertionError("unreachable")


def roi_align(
    features: jax.Array,
    boxes: jax.Array,
    output_size: int | tuple[int, int],
    *,
    batch_indices: jax.Array | None = None,
    spatial_scale: float = 1.0,
    sampling_ratio: int = 0,
    aligned: bool = True,
    mode: str = "avg",
    data_format: str = "NHWC",
    impl: str | None = None,
) -> jax.Array:
    """RoIAlign (Mask R-CNN) with every convention named (``docs/conventions.md`` section 1).

    Args:
      features: (N, H, W, C) for data_format "NHWC" or (N, C, H, W) for "NCHW";
        float32, bfloat16, float16 or float64 (x64).
      boxes: (K, 4) [x1, y1, x2, y2] in input-image coordinates with batch_indices;
        (K, 5) [batch_index, x1, y1, x2, y2]; or per-image padded (N, R, 4).
      output_size: int or (out_h, out_w).
      batch_indices: (K,) ints, for (K, 4) boxes (optional when N == 1).
      spatial_scale: box coordinate -> feature coordinate factor (e.g. 1/16).
      sampling_ratio: > 0 samples per bin and axis; <= 0 adaptive,
        ``ceil(roi_size / output_size)``, exact for any box under jit.
      aligned: True for half-pixel coordinates (Detectron2 ROIAlignV2, mmcv,
        torchvision aligned=True, ONNX half_pixel); False for legacy ones
        (torchvision's default, Caffe2, ONNX opset 10), which also clamp the box
        size to at least one feature pixel.
      mode: "avg"; "max" (max of interpolated samples, mmcv); "corner_max"
        (onnxruntime's max of weighted corner terms).
      data_format: "NHWC" or "NCHW", for features and the result.
      impl: None: on a CPU the CPU kernels where they build (avg, and the max
        modes on fixed grids), XLA otherwise; elsewhere XLA, except on a device kind where a run on that
        hardware recorded the Pallas kernels as correct and faster
        (``kernels/verified_devices.json``; none yet); "xla"; "pallas": the Pallas
        kernels always (interpreted on a CPU); or "cpu": the CPU kernels always (C++
        custom calls built on first use with the system compiler, docs/kernels.md;
        exported programs and other platforms get the same contractions in plain JAX).

    Returns:
      (K, out_h, out_w, C) for NHWC or (K, C, out_h, out_w) for NCHW, (N, R, ...)
      for per-image boxes, in features' dtype.  Accumulation is float32 (float64
      for float64 features).  Equivalent plain JAX for avg, per box k::

          out[k] = einsum("ph,hwc,qw->pqc", Wy[k], X[b[k]], Wx[k])

      with Wy[k][p, h] the mean over bin p's samples of their bilinear read weight
      on row h (zero outside [-1, H], clamped to the border inside it), Wx alike.
      A bin without samples (adaptive grid of a zero-size aligned box) gives 0; a
      batch index outside [0, N) under jit gives zeros and reads no image.
    """
    spec = RoIAlignSpec(output_size_pair(output_size), spatial_scale, sampling_ratio, aligned, mode)
    impl = check_impl(impl)
    x, b = canonical.canonical_inputs(features, boxes, batch_indices, data_format)
    out = roi_align_canonical(x, b.coords, b.batch_indices, spec, impl)
    return b.restore(canonical.output_layout(out, data_format))


@functools.partial(jax.jit, static_argnames=("output_size", "spatial_scale", "corners"))
def roi_pool_canonical(
    features: jax.Array,
    boxes: jax.Array,
    batch_indices: jax.Array,
    output_size: tuple[int, int],
    spatial_scale: float,
    corners: str = "torchvision",
) -> jax.Array:
    """RoIPool of canonical inputs ((N, H, W, C), (K, 4), (K,)): (K, out_h, out_w, C).

    corners: "torchvision" (rounded corners, section 2) or "mmcv" (section 7).
    """
    return xla.roi_pool(features, boxes, batch_indices, output_size, spatial_scale, corners)


def roi_pool(
    features: jax.Array,
    boxes: jax.Array,
    output_size: int | tuple[int, int],
    *,
    batch_indices: jax.Array | None = None,
    spatial_scale: float = 1.0,
    data_format: str = "NHWC",
) -> jax.Array:
    """RoIPool (Fast R-CNN, torchvision.ops.roi_pool): max over quantized bins.

    Boxes and layouts as in :func:`roi_align`.  Box corners are scaled and rounded
    half away from zero; bin (p, q) spans rows [floor(p * bin_h), ceil((p+1) * bin_h))
    from the rounded start, clipped to the map; empty bins give 0
    (``docs/conventions.md`` section 2).  Gradients go to the first argmax of each
    bin (row-major), none to the boxes.  Returns the features' dtype and layout.
    """
    size = output_size_pair(output_size)
    scale = check_spatial_scale(spatial_scale)
    x, b = canonical.canonical_inputs(features, boxes, batch_indices, data_format)
    out = roi_pool_canonical(x, b.coords, b.batch_indices, size, scale)
    return b.restore(canonical.output_layout(out, data_format))


@functools.partial(jax.jit, static_argnames=("crop_size", "method", "extrapolation_value"))
def crop_and_resize_canonical(
    image: jax.Array,
    boxes: jax.Array,
    box_indices: jax.Array,
    crop_size: tuple[int, int],
    method: str,
    extrapolation_value: float,
) -> jax.Array:
    """Crop-and-resize of an (N, H, W, C) image at (K, 4) normalized [y1, x1, y2, x2] boxes (section 4)."""
    return xla.crop_and_resize(image, boxes, box_indices, crop_size, method, extrapolation_value)


def roi_align_rotated_canonical(
    features: jax.Array,
    boxes: jax.Array,
    batch_indices: jax.Array,
    spec: RotatedSpec,
    impl: str | None = None,
) -> jax.Array:
    """Rotated RoIAlign of canonical inputs ((N, H, W, C), (K, 5), (K,)): (K, out_h, out_w, C).

    No Pallas kernel (a rotated box's samples share no rows or columns, so the separable
    avg kernel does not apply): impl="pallas" raises NotImplementedError, impl=None runs XLA.
    """
    return _dispatch(_ROI_ALIGN_ROTATED_IMPLS, impl, features, boxes, batch_indices, spec)


def roi_align_rotated(
    features: jax.Array,
    boxes: jax.Array,
    output_size: int | tuple[int, int],
    *,
    batch_indices: jax.Array | None = None,
    spatial_scale: float = 1.0,
    sampling_ratio: int = 0,
    aligned: bool = True,
    clockwise: bool = False,
    data_format: str = "NHWC",
    impl: str | None = None,
) -> jax.Array:
    """Rotated RoIAlign (Detectron2 ROIAlignRotated, mmcv roi_align_rotated; ``docs/conventions.md`` section 5).

    Args:
      features: (N, H, W, C) for "NHWC" or (N, C, H, W) for "NCHW"; float32, bfloat16,
        float16 or float64 (x64).
      boxes: (K, 5) [cx, cy, w, h, angle] with batch_indices; (K, 6) [batch_index, cx,
        cy, w, h, angle]; or per-image padded (N, R, 5).  Centre and size in input-image
        pixels, the angle in **degrees**, positive counter-clockwise as the image is
        displayed (y down), as Detectron2's RotatedBoxes.
      output_size: int or (out_h, out_w): bins along the box's height and width.
      batch_indices: (K,) ints, for (K, 5) boxes (optional when N == 1).
      spatial_scale: box coordinate -> feature coordinate factor (e.g. 1/16).
      sampling_ratio: > 0 samples per bin and axis; <= 0 adaptive,
        ``ceil(size / output_size)`` per box and axis, exact for any box under jit.
      aligned: True (Detectron2, mmcv's default): the scaled centre moves by -0.5
        (half-pixel); False (mmcv aligned=False): no offset, and the scaled width and
        height are clamped to >= 1 about the centre.
      clockwise: True negates the angle (mmcv clockwise=True).
      data_format: "NHWC" or "NCHW", for features and the result.
      impl: None or "xla"; "pallas" raises NotImplementedError (no kernel).

    Returns:
      (K, out_h, out_w, C) for NHWC or (K, C, out_h, out_w) for NCHW ((N, R, ...) for
      per-image boxes), in features' dtype.  Sample (iy, ix) of bin (p, q) sits at
      ``(yy, xx) = (-h'/2 + p * h'/out_h + (iy + .5) * h'/(out_h * gh), ...)`` in the
      box frame and at ``y = yy cos - xx sin + cy'``, ``x = yy sin + xx cos + cx'`` on
      the map; a bin is the mean of RoIAlign's bilinear reads of its samples, divided by
      ``max(gh * gw, 1)`` (samples outside [-1, H] x [-1, W] read 0).  Accumulation is
      float32 (float64 for float64 features).  Differentiable in the features and in
      all five box parameters (the angle too); the adaptive grid size is piecewise
      constant.  A bin with no samples (adaptive grid of a box of zero or negative size)
      gives 0; a batch index outside [0, N) under jit gives zeros and reads no image; a
      box with a non-finite coordinate gives NaN and passes no gradient.
    """
    spec = RotatedSpec(output_size_pair(output_size), spatial_scale, sampling_ratio, aligned, clockwise)
    impl = check_impl(impl)
    x, b = canonical.canonical_inputs(features, boxes, batch_indices, data_format, coords=5)
    out = roi_align_rotated_canonical(x, b.coords, b.batch_indices, spec, impl)
    return b.restore(canonical.output_layout(out, data_format))


def ps_roi_align_canonical(
    features: jax.Array,
    boxes: jax.Array,
    batch_indices: jax.Array,
    spec: RoIAlignSpec,
    impl: str | None = None,
) -> jax.Array:
    """Position-sensitive RoIAlign of canonical inputs: (K, out_h, out_w, C / (out_h * out_w)).

    spec must have mode "avg".  ValueError when C is not a multiple of out_h * out_w.
    impl="pallas" pools one-bin boxes of the position maps with the avg RoIAlign kernels;
    impl=None runs XLA (the device check measures roi_align's kernels, not this use of them).
    """
    if spec.mode != "avg":
        raise ValueError(f"position-sensitive RoIAlign averages its bins; spec.mode must be 'avg', got {spec.mode!r}")
    position_sensitive.output_channels(features.shape[3], spec.output_size)
    return _dispatch(_PS_ROI_ALIGN_IMPLS, "xla" if impl is None else impl, features, boxes, batch_indices, spec)


def ps_roi_align(
    features: jax.Array,
    boxes: jax.Array,
    output_size: int | tuple[int, int],
    *,
    batch_indices: jax.Array | None = None,
    spatial_scale: float = 1.0,
    sampling_ratio: int = 0,
    data_format: str = "NHWC",
    impl: str | None = None,
) -> jax.Array:
    """Position-sensitive RoIAlign (R-FCN; torchvision ps_roi_align; ``docs/conventions.md`` section 6).

    Args:
      features: (N, H, W, C) for "NHWC" or (N, C, H, W) for "NCHW", C a multiple of
        out_h * out_w; float32, bfloat16, float16 or float64 (x64).
      boxes, batch_indices, spatial_scale, data_format: as in :func:`roi_align`.
      output_size: int or (out_h, out_w).
      sampling_ratio: > 0 samples per bin and axis; <= 0 adaptive (exact under jit).
      impl: None or "xla": the XLA path; "pallas": the avg RoIAlign kernels, pooling
        bin (p, q) of every box as a one-bin box (the same samples up to coordinate
        rounding; box derivatives from the XLA path, first order).

    Returns:
      (K, out_h, out_w, C_out) for NHWC or (K, C_out, out_h, out_w) for NCHW, with
      C_out = C / (out_h * out_w), in features' dtype.  Output channel c at bin (p, q)
      reads input channel ``(c * out_h + p) * out_w + q`` (torchvision's order: channels
      grouped by output channel, then bin row, then bin column) and equals
      ``roi_align(..., aligned=True, mode="avg")`` of bin (p, q) on that channel:
      half-pixel coordinates, no size clamp, the same samples and bilinear reads.
      Accumulation is float32 (float64 for float64 features); differentiable in the
      features and the boxes.  A bin without samples (adaptive grid of a box of zero
      size, or inverted by less than a bin) gives 0, this library's rule for every op;
      torchvision gives NaN there (0 / 0) and -0.0 for some inverted boxes, which
      ``compat.torchvision.ps_roi_align`` reproduces.  Bad batch indices and non-finite
      boxes as in :func:`roi_align`.
    """
    spec = RoIAlignSpec(output_size_pair(output_size), spatial_scale, sampling_ratio, True, "avg")
    impl = check_impl(impl)
    x, b = canonical.canonical_inputs(features, boxes, batch_indices, data_format)
    out = ps_roi_align_canonical(x, b.coords, b.batch_indices, spec, impl)
    return b.restore(canonical.output_layout(out, data_format))


@functools.partial(jax.jit, static_argnames=("output_size", "spatial_scale"))
def _ps_roi_pool_xla(features, boxes, batch_indices, output_size, spatial_scale):
    return xla.ps_roi_pool(features, boxes, batch_indices, output_size, spatial_scale)


def ps_roi_pool_canonical(
    features: jax.Array,
    boxes: jax.Array,
    batch_indices: jax.Array,
    output_size: tuple[int, int],
    spatial_scale: float,
) -> jax.Array:
    """Position-sensitive RoIPool of canonical inputs: (K, out_h, out_w, C / (out_h * out_w)).

    ValueError when C is not a multiple of out_h * out_w.
    """
    position_sensitive.output_channels(features.shape[3], output_size)
    return _ps_roi_pool_xla(features, boxes, batch_indices, output_size, spatial_scale)


def ps_roi_pool(
    features: jax.Array,
    boxes: jax.Array,
    output_size: int | tuple[int, int],
    *,
    batch_indices: jax.Array | None = None,
    spatial_scale: float = 1.0,
    data_format: str = "NHWC",
) -> jax.Array:
    """Position-sensitive RoIPool (R-FCN; torchvision ps_roi_pool's forward; ``docs/conventions.md`` section 6).

    Boxes, layouts and channels as in :func:`ps_roi_align`: output channel c at bin
    (p, q) reads input channel ``(c * out_h + p) * out_w + q``.  Bin (p, q) is the mean
    of that channel over the cells ``[floor(p * bin_h) + y1', ceil((p + 1) * bin_h) + y1')``
    (columns alike), with ``y1' = round(y1 * spatial_scale)`` (half away from zero),
    ``bin_h = max(y2' - y1', 1) / out_h`` and every bin clipped to [0, H - 1] x [0, W - 1]
    as torchvision's forward pass does (the last row and column are never read); an
    empty bin gives 0.  Accumulation is float32 (float64 for float64 features).  The
    gradient w.r.t. the features is the derivative of this forward pass (``1 / area``
    on each cell of the bin); torchvision's backward pass uses other bins (clipped to
    [0, H] x [0, W], corners rounded in float32), so the two differ where a bin reaches
    the last row or column.  No gradient reaches the boxes.  Bad batch indices and
    non-finite boxes as in :func:`roi_align`.  Returns the features' dtype and layout.
    """
    size = output_size_pair(output_size)
    scale = check_spatial_scale(spatial_scale)
    x, b = canonical.canonical_inputs(features, boxes, batch_indices, data_format)
    out = ps_roi_pool_canonical(x, b.coords, b.batch_indices, size, scale)
    return b.restore(canonical.output_layout(out, data_format))


RESIZE_METHODS: dict[str, str] = {
    "nearest": "nearest",
    "bilinear": "linear",
    "linear": "linear",
    "bicubic": "cubic",
    "cubic": "cubic",
    "area": "area",
}


@functools.partial(jax.jit, static_argnames=("table_h", "table_w", "fill", "dtype"))
def resize_canonical(
    x: jax.Array,
    table_h: tables.AxisTable,
    table_w: tables.AxisTable,
    fill: float = 0.0,
    dtype: str | None = None,
) -> jax.Array:
    """(N, H, W, C) x resampled by two static per-axis tables (``core.resize``): (N, out_h, out_w, C).

    The result has ``dtype`` (default: x's).  Nearest-neighbour tables copy values
    exactly; other tables compute in float32 (float64 for float64 x), and an integer
    result is rounded half to even and saturated.  Outputs outside a table take fill.
    """
    y = xla_resize.resample(x, table_h, table_w, fill)
    target = jnp.dtype(x.dtype if dtype is None else dtype)
    if y.dtype == target:
        return y
    if jnp.issubdtype(target, jnp.integer) and not jnp.issubdtype(y.dtype, jnp.integer):
        return xla_resize.round_to_integer(y, target)
    return y.astype(target)


@functools.partial(jax.jit, static_argnames="rule")
def resize_integer_canonical(x: jax.Array, rule: object) -> jax.Array:
    """uint8 (N, H, W, C) x resampled with a framework's integer arithmetic (a rule of ``core.resize``)."""
    return xla_resize.integer_resample(x, rule)


def _resize_axes(
    shape: tuple[int, int], size: int | tuple[int, int] | None, scale: float | tuple[float, float] | None
) -> tuple[tuple[int, int], tuple[float, float]]:
    """((out_h, out_w), (scale_h, scale_w)): ONNX's output size and coordinate scale per axis.

    From a size, the scale is float32(out) / float32(in); from a scale, the output is
    trunc(float32(scale) * float32(in)) and the given scale drives the coordinates.
    """
    if (size is None) == (scale is None):
        raise ValueError(f"give exactly one of size and scale, got size={size!r}, scale={scale!r}")
    if size is not None:
        out = output_size_pair(size, name="size")
        return out, tuple(float(tables.f32(o) / tables.f32(n)) for o, n in zip(out, shape, strict=True))
    scales = scale_pair(scale)
    out = tuple(tables.onnx_output_size(n, s) for n, s in zip(shape, scales, strict=True))
    if min(out) < 1:
        raise ValueError(f"scale {scale!r} gives an empty output {out} for an input of size {shape}")
    return out, scales


def _check_roi(roi: tuple[float, float, float, float] | None) -> tuple[float, float, float, float]:
    if roi is None:
        return (0.0, 0.0, 1.0, 1.0)
    if not isinstance(roi, (tuple, list)) or len(roi) != 4:
        raise ValueError(f"roi must be (y1, x1, y2, x2) normalized, got {roi!r}")
    return tuple(check_finite(v, "roi") for v in roi)


def resize(
    x: jax.Array,
    size: int | tuple[int, int] | None = None,
    *,
    scale: float | tuple[float, float] | None = None,
    method: str = "bilinear",
    coordinate_mode: str = "half_pixel",
    nearest_mode: str = "round_prefer_floor",
    cubic_coeff_a: float = -0.75,
    exclude_outside: bool = False,
    antialias: bool = False,
    roi: tuple[float, float, float, float] | None = None,
    extrapolation_value: float = 0.0,
    data_format: str = "NHWC",
) -> jax.Array:
    """Resize with ONNX Resize (opset 19) semantics as onnxruntime computes them (``docs/conventions.md`` 8).

    Args:
      x: (N, H, W, C) for "NHWC" or (N, C, H, W) for "NCHW"; float32, bfloat16, float16,
        float64 (x64) or an integer dtype.
      size: output (out_h, out_w) or an int for both; or give
      scale: a number or (scale_h, scale_w): output trunc(float32(scale) * float32(in)),
        and the given scale (not out / in) drives the coordinates.
      method: "nearest", "bilinear" (= "linear"), "bicubic" (= "cubic") or "area" (the
        exact mean over each output cell [o / s, (o + 1) / s), half-pixel only).
      coordinate_mode: ONNX's coordinate_transformation_mode: "half_pixel",
        "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
        "tf_half_pixel_for_nn" or "tf_crop_and_resize" (with roi and extrapolation_value).
      nearest_mode: "round_prefer_floor", "round_prefer_ceil", "floor" or "ceil".
      cubic_coeff_a: the cubic kernel's a (-0.75 as torch and OpenCV; -0.5 as TF and PIL).
      exclude_outside: cubic taps outside the image get weight 0, the rest renormalized.
      antialias: widen the linear / cubic filter by in / out when downsampling (ONNX
        opset 18); ignored for nearest.
      roi: (y1, x1, y2, x2), the normalized crop of tf_crop_and_resize (default 0, 0, 1, 1).
      extrapolation_value: value of tf_crop_and_resize outputs whose source lies outside
        [0, size - 1] (rounded and saturated for an integer x).
      data_format: "NHWC" or "NCHW", for x and the result.

    Returns:
      The resized x in x's dtype and layout.  Linear, cubic and area compute in float32
      (float64 for float64 x): ``y = Wh x Ww^T`` with one (out, in) weight matrix per
      axis (``core.resize.onnx_axis``); an integer x is rounded half to even and
      saturated.  Nearest copies values, exactly, in any dtype.  As onnxruntime, an axis
      whose scale is exactly 1 is copied (roi ignored) and an output the shape of the input
      is x itself.  Differentiable in x (nearest: the gradient of a copy).
    """
    method = RESIZE_METHODS[check_choice(method, "method", tuple(RESIZE_METHODS))]
    check_choice(coordinate_mode, "coordinate_mode", tables.COORDINATE_MODES)
    check_choice(nearest_mode, "nearest_mode", tables.NEAREST_MODES)
    a = check_finite(cubic_coeff_a, "cubic_coeff_a")
    exclude_outside = check_bool(exclude_outside, "exclude_outside")
    antialias = check_bool(antialias, "antialias")
    fill = check_finite(extrapolation_value, "extrapolation_value")
    y1, x1, y2, x2 = _check_roi(roi)
    if method == "area" and coordinate_mode != "half_pixel":
        raise ValueError(
            f"method 'area' averages half-pixel cells; coordinate_mode must be 'half_pixel', got {coordinate_mode!r}"
        )
    images = canonical.canonical_images(x, data_format)
    (out_h, out_w), (scale_h, scale_w) = _resize_axes(images.shape[1:3], size, scale)
    n_h, n_w = images.shape[1:3]
    if (out_h, out_w) == (n_h, n_w):
        return jnp.asarray(x)
    if method == "area":
        given = size is None
        table_h = tables.area_axis(n_h, out_h, scale_h if given else None)
        table_w = tables.area_axis(n_w, out_w, scale_w if given else None)
    else:
        common = (method, coordinate_mode, nearest_mode, a, exclude_outside, antialias and method != "nearest")
        table_h = tables.onnx_axis(n_h, out_h, scale_h, *common, (y1, y2))
        table_w = tables.onnx_axis(n_w, out_w, scale_w, *common, (x1, x2))
    return canonical.output_layout(resize_canonical(images, table_h, table_w, fill), data_format)


@functools.partial(jax.jit, static_argnames=("canvas", "convention", "threshold", "padding"))
def paste_masks_canonical(
    masks: jax.Array,
    boxes: jax.Array,
    limits: jax.Array,
    canvas: tuple[int, int],
    convention: str,
    threshold: float | None,
    padding: int = 1,
) -> jax.Array:
    """(K, Mh, Mw) masks, (K, 4) boxes, (K, 2) image sizes -> (K, H, W) pasted masks (section 9)."""
    return xla_paste.paste_masks(masks, boxes, limits, canvas, convention, threshold, padding)


def _image_sizes(image_size) -> tuple[tuple[int, int], ...]:
    """((H, W), ...) from one (H, W) pair or a sequence of per-image pairs."""
    if not isinstance(image_size, (tuple, list)) or len(image_size) == 0:
        raise TypeError(f"image_size must be (H, W) or a sequence of per-image (H, W) pairs, got {image_size!r}")
    if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in image_size):
        if len(image_size) != 2:
            raise TypeError(f"image_size must be (H, W) or a sequence of per-image (H, W) pairs, got {image_size!r}")
        return (output_size_pair(tuple(image_size), name="image_size"),)
    if not all(isinstance(s, (tuple, list)) for s in image_size):
        raise TypeError(f"image_size must be (H, W) or a sequence of per-image (H, W) pairs, got {image_size!r}")
    return tuple(output_size_pair(tuple(s), name="image_size") for s in image_size)


def paste_masks(
    masks: jax.Array,
    boxes: jax.Array,
    image_size: tuple[int, int] | list[tuple[int, int]],
    *,
    convention: str = "torchvision",
    threshold: float | None = 0.5,
    batch_indices: jax.Array | None = None,
) -> jax.Array:
    """Paste Mask R-CNN masks into their boxes in the image (``docs/conventions.md`` section 9).

    Args:
      masks: (K, M, M) mask probabilities (or (K, 1, M, M) as torchvision gives them),
        or per image (N, R, M, M) with boxes (N, R, 4); float (computed in float32, float64
        for float64) or integer (as float32).
      boxes: (K, 4) [x1, y1, x2, y2] in image pixels, or (N, R, 4).
      image_size: (H, W), or a sequence of per-image (H_n, W_n): the output canvas is the
        largest, and each mask is clipped to its own image (pixels beyond it stay 0).
      convention: "torchvision" (``paste_masks_in_image``: pad by one pixel, box scaled by
        (M + 2) / M and truncated to integers, bilinear ``interpolate`` to the box's pixel
        size) or "detectron2" (``grid_sample`` of every pixel centre at
        ``(x + 0.5 - x1) / (x2 - x1) * M - 0.5``, zero padding, CPU window per mask).
      threshold: None for the soft masks; a number >= 0 gives ``soft >= threshold``
        (bool); a negative number gives ``uint8(soft * 255)`` truncated (Detectron2's rule).
      batch_indices: (K,) image of each mask, needed with several image sizes and (K, ...)
        masks; a mask whose index is outside [0, N) pastes nothing (under jit).

    Returns:
      (K, H, W) (or (N, R, H, W)): bool, uint8, or the masks' float dtype (float32 for
      integer masks) when soft.  Static shapes under jit; masks are pasted in chunks of
      about 128 MiB of working memory.  The soft masks are differentiable in masks (and,
      for Detectron2, in the boxes; torchvision truncates them to integers).
    """
    check_choice(convention, "convention", xla_paste.CONVENTIONS)
    if threshold is not None:
        threshold = check_finite(threshold, "threshold")
    sizes = _image_sizes(image_size)
    canvas = (max(h for h, _ in sizes), max(w for _, w in sizes))
    masks, boxes = jnp.asarray(masks), jnp.asarray(boxes)
    if not jnp.issubdtype(boxes.dtype, jnp.floating):
        raise TypeError(f"boxes must be floating point, got dtype {boxes.dtype}")
    if not (jnp.issubdtype(masks.dtype, jnp.floating) or jnp.issubdtype(masks.dtype, jnp.integer)):
        raise TypeError(f"masks must be floating point or integer, got dtype {masks.dtype}")
    if masks.ndim == 4 and boxes.ndim == 2 and masks.shape[1] == 1:
        masks = masks[:, 0]
    per_image = boxes.ndim == 3
    if per_image:
        if batch_indices is not None:
            raise ValueError("batch_indices must be None with per-image (N, R, 4) boxes")
        if masks.ndim != 4 or masks.shape[:2] != boxes.shape[:2] or boxes.shape[2] != 4:
            raise ValueError(
                f"per-image masks (N, R, M, M) and boxes (N, R, 4) must agree, got {masks.shape}, {boxes.shape}"
            )
        n, r = boxes.shape[:2]
        leading = (n, r)
        indices = jnp.repeat(jnp.arange(n, dtype=jnp.int32), r)
        masks, boxes = masks.reshape((n * r,) + masks.shape[2:]), boxes.reshape(n * r, 4)
        n_images = n
    else:
        if boxes.ndim != 2 or boxes.shape[1] != 4 or masks.ndim != 3 or masks.shape[0] != boxes.shape[0]:
            raise ValueError(f"masks must be (K, M, M) and boxes (K, 4), got {masks.shape}, {boxes.shape}")
        leading = (boxes.shape[0],)
        n_images = len(sizes)
        if batch_indices is None:
            if len(sizes) > 1:
                raise ValueError(f"batch_indices is required with (K, 4) boxes and {len(sizes)} image sizes")
            indices = jnp.zeros((boxes.shape[0],), jnp.int32)
        else:
            indices = canonical.check_batch_indices(batch_indices, boxes.shape[0], n_images)
    if len(sizes) not in (1, n_images):
        raise ValueError(f"image_size lists {len(sizes)} sizes for {n_images} images")
    table = jnp.asarray(sizes if len(sizes) > 1 else sizes * n_images, jnp.int32)
    in_range, image = images_in_range(indices, n_images)
    limits = jnp.where(in_range[:, None], table[image], 0)
    out = paste_masks_canonical(masks, boxes, limits, canvas, convention, threshold)
    return out.reshape(leading + out.shape[1:])
