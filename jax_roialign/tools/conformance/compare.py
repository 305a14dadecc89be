"""Comparisons: our result for a case (through ``jax_roialign.compat``) against a framework's arrays.

Float64 cases must agree to 1e-6 relative, float32 ones to 1e-5, each with an absolute
floor of the same size times ``max(1, max |theirs|)``: equal up to float rounding.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jax_roialign.compat import chainer, onnx, opencv, tensorflow, torchvision
from jax_roialign.compat import torch as torch_compat
from jax_roialign.core import position_sensitive

ROUNDING = {"float64": 1e-6, "float32": 1e-5}


@dataclass(frozen=True)
class FieldResult:
    """One array of ours against the framework's: passed when every element has
    ``|ours - theirs| <= atol + rtol * |theirs|`` (NaN equal to NaN) and the shapes agree.

    max_abs is ``max |ours - theirs|`` (inf on a shape mismatch or a NaN on one side only);
    max_rel is max_abs over ``max |theirs|`` (normwise, so zeros in theirs do not blow it up).
    """

    field: str
    max_abs: float
    max_rel: float
    rtol: float
    atol: float
    passed: bool


def compare(field: str, ours: Any, theirs: np.ndarray, rtol: float, atol: float) -> FieldResult:
    """ours against theirs in float64 (see :class:`FieldResult` for the rule and the errors)."""
    ours = np.asarray(ours, np.float64)
    theirs = np.asarray(theirs, np.float64)
    if ours.shape != theirs.shape:
        return FieldResult(field, np.inf, np.inf, rtol, atol, False)
    close = np.isclose(ours, theirs, rtol=rtol, atol=atol, equal_nan=True)
    with np.errstate(invalid="ignore"):  # inf - inf
        diff = np.abs(ours - theirs)
    # NaN differences: both NaN or equal infinities (close) count 0, the rest infinite.
    diff = np.where(np.isnan(diff), np.where(close, 0.0, np.inf), diff)
    max_abs = float(diff.max(initial=0.0))
    scale = float(np.abs(theirs[np.isfinite(theirs)]).max(initial=0.0))
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else np.inf)
    return FieldResult(field, max_abs, max_rel, rtol, atol, bool(close.all()))


def compare_rounding(field: str, ours: Any, theirs: np.ndarray, dtype: str, tol: float | None = None) -> FieldResult:
    """compare with rtol = tol (default: ROUNDING[dtype]) and atol = tol * max(1, max |theirs|)."""
    tol = ROUNDING[dtype] if tol is None else tol
    scale = max(1.0, float(np.abs(theirs).max(initial=0.0)))
    return compare(field, ours, theirs, tol, tol * scale)


def _torchvision_roi_op(
    op: Callable[..., jax.Array], params: dict, arrays: dict[str, np.ndarray], impl: str | None = None
) -> list[FieldResult]:
    """Output and input gradient of torchvision.ops.roi_align or roi_pool (through the compat op)."""
    dtype = params["dtype"]
    rois = jnp.asarray(arrays["rois"], dtype)
    kwargs = {k: params[k] for k in ("spatial_scale", "sampling_ratio", "aligned") if k in params}
    if impl is not None:
        kwargs["impl"] = impl

    def f(x):
        return op(x, rois, tuple(params["output_size"]), **kwargs)

    out, vjp = jax.vjp(f, jnp.asarray(arrays["input"], dtype))
    (grad,) = vjp(jnp.asarray(arrays["cotangent"], dtype))
    return [
        compare_rounding("output", out, arrays["output"], dtype),
        compare_rounding("grad_input", grad, arrays["grad_input"], dtype),
    ]


def _torchvision_ps_roi_op(
    op: Callable[..., jax.Array], params: dict, arrays: dict[str, np.ndarray], impl: str | None = None
) -> list[FieldResult]:
    """Output and input gradient of torchvision.ops.ps_roi_align or ps_roi_pool, and the channel each bin reads.

    ps_roi_pool cases carry a cotangent that is zero on the boxes where torchvision's
    backward is not the derivative of its forward (params["cotangent_zero_boxes"]).
    """
    results = _torchvision_roi_op(op, params, arrays, impl)
    mapping = position_sensitive.channel_mapping(arrays["output"].shape[1], tuple(params["output_size"]))
    mapping = np.broadcast_to(mapping, arrays["channel_mapping"].shape)
    return [*results, compare("channel_mapping", mapping, arrays["channel_mapping"], 0.0, 0.0)]


def _torchvision_multi_scale_roi_align(params: dict, arrays: dict[str, np.ndarray]) -> list[FieldResult]:
    dtype = params["dtype"]
    feats = {name: jnp.asarray(arrays[f"feat.{name}"], dtype) for name in params["featmap_names"]}
    boxes = [jnp.asarray(arrays[f"boxes.{i}"], dtype) for i in range(len(params["image_shapes"]))]
    out = torchvision.multi_scale_roi_align(
        feats,
        boxes,
        [tuple(s) for s in params["image_shapes"]],
        featmap_names=params["featmap_names"],
        output_size=tuple(params["output_size"]),
        sampling_ratio=params["sampling_ratio"],
        canonical_scale=params["canonical_scale"],
        canonical_level=params["canonical_level"],
    )
    return [compare_rounding("output", out, arrays["output"], dtype)]


def _onnx_roi_align(params: dict, arrays: dict[str, np.ndarray], impl: str | None = None) -> jax.Array:
    dtype = params["dtype"]
    return onnx.roi_align(
        jnp.asarray(arrays["X"], dtype),
        jnp.asarray(arrays["rois"], dtype),
        jnp.asarray(arrays["batch_indices"]),
        mode=params["mode"],
        output_height=params["output_height"],
        output_width=params["output_width"],
        sampling_ratio=params["sampling_ratio"],
        spatial_scale=params["spatial_scale"],
        coordinate_transformation_mode=params["coordinate_transformation_mode"],
        opset=params["opset"],
        impl=impl,
    )


def _onnxruntime_roi_align(params: dict, arrays: dict[str, np.ndarray], impl: str | None = None) -> list[FieldResult]:
    out = _onnx_roi_align(params, arrays, impl)
    return [compare_rounding("output", out, arrays["output"], params["dtype"])]


def _onnx_backend_roi_align(params: dict, arrays: dict[str, np.ndarray], impl: str | None = None) -> list[FieldResult]:
    """The onnx package's own node tests: their expected outputs are written with 4 decimals
    (off by up to 8.4e-5), hence 1e-4 absolute and relative."""
    return [compare("output", _onnx_roi_align(params, arrays, impl), arrays["output"], 1e-4, 1e-4)]


def _tensorflow_crop_and_resize(params: dict, arrays: dict[str, np.ndarray]) -> list[FieldResult]:
    """Output, image gradient (float images) and box gradient (bilinear) of tf.image.crop_and_resize.

    Integer images go in as they are (NumPy arrays of their dtype, int64 included) and
    have no gradient, in TF too.
    """

    def f(image, boxes):
        return tensorflow.crop_and_resize(
            image,
            boxes,
            jnp.asarray(arrays["box_indices"]),
            tuple(params["crop_size"]),
            params["method"],
            params["extrapolation_value"],
        )

    boxes, cotangent = jnp.asarray(arrays["boxes"], jnp.float32), jnp.asarray(arrays["cotangent"], jnp.float32)
    if "image_dtype" in params:
        out, vjp = jax.vjp(lambda b: f(arrays["image"], b), boxes)
        (grad_boxes,) = vjp(cotangent)
        results = [compare_rounding("output", out, arrays["output"], "float32")]
    else:
        out, vjp = jax.vjp(f, jnp.asarray(arrays["image"], jnp.float32), boxes)
        grad_image, grad_boxes = vjp(cotangent)
        results = [
            compare_rounding("output", out, arrays["output"], "float32"),
            compare_rounding("grad_image", grad_image, arrays["grad_image"], "float32"),
        ]
    if "grad_boxes" in arrays:
        # Box gradients sum many products of differences: float32 cancellation, hence 1e-4.
        results.append(compare_rounding("grad_boxes", grad_boxes, arrays["grad_boxes"], "float32", tol=1e-4))
    return results


def _dtype_field(field: str, ours: jax.Array, theirs: np.ndarray) -> FieldResult:
    """Whether ours has the framework's dtype (max_abs 0 if so, inf if not)."""
    same = jnp.dtype(ours.dtype) == np.dtype(theirs.dtype)
    return FieldResult(f"{field}.dtype", 0.0 if same else np.inf, 0.0 if same else np.inf, 0.0, 0.0, bool(same))


def _resized(
    call: Callable[[jax.Array, dict], jax.Array], params: dict, arrays: dict[str, np.ndarray]
) -> list[FieldResult]:
    """A resize twin against the framework: output (and its dtype), and the input gradient where there is one.

    Integer outputs must be equal (within params["atol"], default 0); float ones within
    float rounding of their dtype.
    """
    x = jnp.asarray(arrays["x"])
    theirs = arrays["output"]
    if "cotangent" in arrays:
        out, vjp = jax.vjp(lambda x: call(x, params), x)
        (grad,) = vjp(jnp.asarray(arrays["cotangent"]))
    else:
        out, grad = call(x, params), None
    if np.issubdtype(theirs.dtype, np.integer):
        atol = float(params.get("atol", 0))
        results = [compare("output", out, theirs, 0.0, atol)]
    else:
        results = [compare_rounding("output", out, theirs, str(theirs.dtype))]
    results.append(_dtype_field("output", out, theirs))
    if grad is not None:
        results.append(compare_rounding("grad_x", grad, arrays["grad_x"], str(arrays["grad_x"].dtype)))
    return results


def _twin_kwargs(params: dict, *names: str) -> tuple[list, dict]:
    """(the positional arguments named, the remaining keyword arguments) of params["kwargs"]."""
    kwargs = dict(params["kwargs"])
    return [kwargs.pop(name) for name in names], kwargs


def _interpolate(x: jax.Array, params: dict) -> jax.Array:
    kwargs = dict(params["kwargs"])
    if "size" in kwargs:
        kwargs["size"] = tuple(kwargs["size"])
    return torch_compat.interpolate(x, **kwargs)


def _onnx_resize(x: jax.Array, params: dict) -> jax.Array:
    return onnx.resize(x, **params["kwargs"], opset=params["opset"], layout=params["layout"])


def _onnx_upsample(x: jax.Array, params: dict) -> jax.Array:
    (scales,), kwargs = _twin_kwargs(params, "scales")
    return onnx.upsample(x, scales, **kwargs, opset=params["opset"])


def _tf_resize(x: jax.Array, params: dict) -> jax.Array:
    (size,), kwargs = _twin_kwargs(params, "size")
    return tensorflow.resize(x, tuple(size), **kwargs)


def _tf_resize_v1(x: jax.Array, params: dict) -> jax.Array:
    (size,), kwargs = _twin_kwargs(params, "size")
    return tensorflow.resize_v1(x, tuple(size), **kwargs)


def _cv2_resize(x: jax.Array, params: dict) -> jax.Array:
    (dsize,), kwargs = _twin_kwargs(params, "dsize")
    return opencv.resize(x, None if dsize is None else tuple(dsize), **kwargs)


def _chainer_resize_images(x: jax.Array, params: dict) -> jax.Array:
    (shape,), kwargs = _twin_kwargs(params, "output_shape")
    return chainer.resize_images(x, tuple(shape), **kwargs)


def _paste_masks_in_image(params: dict, arrays: dict[str, np.ndarray]) -> list[FieldResult]:
    out = torchvision.paste_masks_in_image(arrays["masks"], arrays["boxes"], tuple(params["image_shape"]))
    return [compare_rounding("output", out, arrays["output"], "float32"), _dtype_field("output", out, arrays["output"])]


COMPARISONS: dict[tuple[str, str], Callable[[dict, dict[str, np.ndarray]], list[FieldResult]]] = {
    ("torchvision", "roi_align"): functools.partial(_torchvision_roi_op, torchvision.roi_align),
    ("torchvision", "roi_pool"): functools.partial(_torchvision_roi_op, torchvision.roi_pool),
    ("torchvision", "multi_scale_roi_align"): _torchvision_multi_scale_roi_align,
    ("torchvision", "ps_roi_align"): functools.partial(_torchvision_ps_roi_op, torchvision.ps_roi_align),
    ("torchvision", "ps_roi_pool"): functools.partial(_torchvision_ps_roi_op, torchvision.ps_roi_pool),
    ("onnxruntime", "roi_align"): _onnxruntime_roi_align,
    ("onnx_backend", "roi_align"): _onnx_backend_roi_align,
    ("tensorflow", "crop_and_resize"): _tensorflow_crop_and_resize,
    ("torch", "interpolate"): functools.partial(_resized, _interpolate),
    ("torch", "paste_masks_in_image"): _paste_masks_in_image,
    ("onnxruntime_resize", "resize"): functools.partial(_resized, _onnx_resize),
    ("onnxruntime_resize", "upsample"): functools.partial(_resized, _onnx_upsample),
    ("tensorflow_resize", "resize"): functools.partial(_resized, _tf_resize),
    ("tensorflow_resize", "resize_v1"): functools.partial(_resized, _tf_resize_v1),
    ("opencv", "resize"): functools.partial(_resized, _cv2_resize),
    ("chainer", "resize_images"): functools.partial(_resized, _chainer_resize_images),
}


# The (framework, op) pairs whose op takes impl=, so that a case can run on either implementation.
SELECTS_IMPL: frozenset[tuple[str, str]] = frozenset(
    {
        ("torchvision", "roi_align"),
        ("torchvision", "ps_roi_align"),
        ("onnxruntime", "roi_align"),
        ("onnx_backend", "roi_align"),
    }
)


def compare_case(
    framework: str, params: dict, arrays: dict[str, np.ndarray], *, impl: str | None = None
) -> list[FieldResult]:
    """Our result for one case against the framework's arrays (inputs and outputs in one dict).

    Runs with 64-bit types enabled, so float64 cases are computed in float64.  ``impl``
    ("xla" or "pallas"; None: the dispatcher's choice) applies to the pairs in
    ``SELECTS_IMPL``.  Raises ValueError for a (framework, params["op"]) pair without a
    comparison, or an impl given for a pair outside ``SELECTS_IMPL``.
    """
    key = (framework, params.get("op"))
    if key not in COMPARISONS:
        raise ValueError(f"no comparison for framework {framework!r} and op {params.get('op')!r}")
    if impl is not None and key not in SELECTS_IMPL:
        raise ValueError(f"impl={impl!r} given for {framework} {params.get('op')}, which has no impl choice")
    kwargs = {} if impl is None else {"impl": impl}
    with jax.enable_x64(True):
        return COMPARISONS[key](params, arrays, **kwargs)
