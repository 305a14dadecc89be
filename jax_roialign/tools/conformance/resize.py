"""Conformance cases and framework runners of resize and mask pasting (``docs/conventions.md`` 8, 9).

Cases are small images (NCHW (1, 2, h, w), or what the framework takes) holding integers
0..255 as float32 or uint8, resized up and down by odd sizes (5x7 -> 3x4, 3x3 -> 7x7,
7x5 -> 5x3), by 2x, and by scales such as 1.7 and 0.6, under every mode and flag of
each framework.  ``params`` records the framework call: ``op`` and ``kwargs`` are the
arguments of both the framework's function and its twin in ``jax_roialign.compat``.
Every runner imports its framework lazily and returns ``{"output": ...}`` plus
``{"grad_x": ...}`` (the VJP with the case's cotangent) where the framework has
gradients.  Chainer runs in another interpreter (it needs numpy < 1.24): set
``JAX_ROIALIGN_CHAINER_PYTHON`` to a Python that imports chainer.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from jax_roialign.tools.conformance.cases import Case, case_rng, fmt

CHAINER_PYTHON = "JAX_ROIALIGN_CHAINER_PYTHON"

# (name, (in_h, in_w), how the output is given, its value): sizes (out_h, out_w) or a scale.
SHAPES: dict[str, tuple[tuple[int, int], str, Any]] = {
    "5x7to3x4": ((5, 7), "size", (3, 4)),
    "3x3to7x7": ((3, 3), "size", (7, 7)),
    "7x5to5x3": ((7, 5), "size", (5, 3)),
    "4x6to8x12": ((4, 6), "size", (8, 12)),
    "8x12to4x6": ((8, 12), "size", (4, 6)),
    "5x7s1.7": ((5, 7), "scale", 1.7),
    "10x10s0.6": ((10, 10), "scale", 0.6),
}


def _image(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Integers 0..255 as dtype (exact in every dtype, compact in the archive)."""
    return rng.integers(0, 256, shape).astype(dtype)


def _case(name: str, op: str, dtype: str, kwargs: dict, x_shape: tuple[int, ...], gradient: bool, **params) -> Case:
    rng = case_rng(name)
    inputs = {"x": _image(rng, x_shape, dtype)}
    if gradient:
        inputs["cotangent"] = rng.standard_normal(_output_shape(op, x_shape, kwargs, params)).astype(dtype)
    return {"name": name, "params": {"op": op, "dtype": dtype, "kwargs": kwargs, **params}, "inputs": inputs}


def _output_shape(op: str, x_shape: tuple[int, ...], kwargs: dict, params: dict) -> tuple[int, ...]:
    """The output shape of a case with gradients (torch, TensorFlow and Chainer cases)."""
    if op == "interpolate":
        n, c, h, w = x_shape
        if kwargs.get("size") is not None:
            return (n, c, *kwargs["size"])
        s = kwargs["scale_factor"]
        return (n, c, int(np.floor(h * s)), int(np.floor(w * s)))
    if op in ("resize", "resize_v1"):  # TensorFlow, NHWC
        n, h, w, c = x_shape
        size = tuple(kwargs["size"])
        if kwargs.get("preserve_aspect_ratio"):
            s = min(np.float32(size[0]) / np.float32(h), np.float32(size[1]) / np.float32(w))
            size = (int(np.rint(s * np.float32(h))), int(np.rint(s * np.float32(w))))
        return (n, *size, c)
    if op == "resize_images":
        return (*x_shape[:2], *kwargs["output_shape"])
    raise ValueError(f"no gradient cases for op {op!r}")


# ------------------------------------------------------------------------------------- torch
TORCH_TABLE: list[tuple[str, dict, tuple[str, ...]]] = [
    ("nearest", {}, ("5x7to3x4", "3x3to7x7", "4x6to8x12", "5x7s1.7", "10x10s0.6")),
    ("nearest-exact", {}, ("5x7to3x4", "5x7s1.7")),
    ("bilinear", {"align_corners": False}, ("5x7to3x4", "3x3to7x7", "5x7s1.7", "4x6to8x12")),
    ("bilinear", {"align_corners": True}, ("7x5to5x3", "3x3to7x7")),
    ("bilinear", {"antialias": True}, ("8x12to4x6", "5x7to3x4", "3x3to7x7")),
    ("bilinear", {"align_corners": True, "antialias": True}, ("5x7to3x4",)),
    ("bicubic", {"align_corners": False}, ("5x7to3x4", "3x3to7x7", "5x7s1.7")),
    ("bicubic", {"align_corners": True}, ("7x5to5x3",)),
    ("bicubic", {"antialias": True}, ("8x12to4x6", "3x3to7x7")),
    ("area", {}, ("5x7to3x4", "7x5to5x3", "3x3to7x7")),
]
TORCH_UINT8: list[tuple[str, dict, str]] = [
    ("nearest", {}, "5x7to3x4"),
    ("bilinear", {"align_corners": False}, "3x3to7x7"),
    ("bilinear", {"antialias": True}, "8x12to4x6"),
    ("bicubic", {"align_corners": False}, "5x7to3x4"),
    ("bicubic", {"align_corners": True}, "3x3to7x7"),
    ("bicubic", {"antialias": True}, "5x7to3x4"),
]
TORCH_FLOAT64: list[tuple[str, dict, str]] = [
    ("bilinear", {"align_corners": False}, "5x7s1.7"),
    ("bicubic", {"align_corners": False}, "3x3to7x7"),
]


def _flags_tag(flags: dict) -> str:
    tags = {"align_corners": "ac", "antialias": "aa", "recompute_scale_factor": "rsf"}
    return "".join(f".{tags[k]}{int(v)}" for k, v in sorted(flags.items()))


def _torch_case(mode: str, flags: dict, shape: str, dtype: str, recompute: bool = False) -> Case:
    (h, w), kind, value = SHAPES[shape]
    kwargs = {"mode": mode, **flags}
    if kind == "size":
        kwargs["size"] = list(value)
    else:
        kwargs["scale_factor"] = value
        if recompute:
            kwargs["recompute_scale_factor"] = True
    tag = {"float32": "f32", "float64": "f64", "uint8": "u8"}[dtype]
    name = f"interpolate.{mode}{_flags_tag(flags)}{'.rsf1' if recompute else ''}.{shape}.{tag}"
    return _case(name, "interpolate", dtype, kwargs, (1, 2, h, w), dtype != "uint8")


def torch_cases() -> list[Case]:
    """F.interpolate (every mode and flag, float32, float64 and uint8) and paste_masks_in_image."""
    cases = [_torch_case(mode, flags, shape, "float32") for mode, flags, shapes in TORCH_TABLE for shape in shapes]
    cases.append(_torch_case("bilinear", {"align_corners": False}, "5x7s1.7", "float32", recompute=True))
    cases.append(_torch_case("nearest", {}, "5x7s1.7", "float32", recompute=True))
    cases += [_torch_case(mode, flags, shape, "uint8") for mode, flags, shape in TORCH_UINT8]
    cases += [_torch_case(mode, flags, shape, "float64") for mode, flags, shape in TORCH_FLOAT64]
    return cases + paste_cases()


# (mask size, number of masks, image (H, W)): boxes of every kind, some hanging off the image.
PASTE_TABLE: list[tuple[int, int, tuple[int, int]]] = [(28, 6, (60, 80)), (7, 5, (23, 31)), (14, 4, (40, 40))]


def paste_cases() -> list[Case]:
    """torchvision's paste_masks_in_image: random masks, boxes inside, across and off the image."""
    cases = []
    for m, k, (h, w) in PASTE_TABLE:
        name = f"paste_masks_in_image.M{m}.K{k}.{h}x{w}"
        rng = case_rng(name)
        x0, y0 = rng.uniform(-10, w - 5, k), rng.uniform(-10, h - 5, k)
        bw, bh = rng.uniform(0.5, 0.8 * w, k), rng.uniform(0.5, 0.8 * h, k)
        boxes = np.stack([x0, y0, x0 + bw, y0 + bh], axis=1)
        boxes[0] = [2.0, 3.0, 12.0, 9.0]  # integer corners
        boxes[1] = [w - 3.5, h - 2.25, w + 6.0, h + 4.0]  # hanging off the bottom-right corner
        boxes[2] = [-4.75, -3.5, 0.6 * w, 0.5 * h]  # hanging off the top-left corner
        inputs = {"masks": rng.random((k, 1, m, m)).astype(np.float32), "boxes": boxes.astype(np.float32)}
        params = {"op": "paste_masks_in_image", "dtype": "float32", "image_shape": [h, w]}
        cases.append({"name": name, "params": params, "inputs": inputs})
    return cases


def run_torch(case: Case) -> dict[str, np.ndarray]:
    """F.interpolate with its VJP, or torchvision's paste_masks_in_image (CPU)."""
    import torch

    p, x = case["params"], case["inputs"]
    if p["op"] == "paste_masks_in_image":
        from torchvision.models.detection.roi_heads import paste_masks_in_image

        masks, boxes = torch.from_numpy(x["masks"]), torch.from_numpy(x["boxes"])
        return {"output": paste_masks_in_image(masks, boxes, tuple(p["image_shape"])).numpy()}
    kwargs = dict(p["kwargs"])
    if "size" in kwargs:
        kwargs["size"] = tuple(kwargs["size"])
    if "cotangent" not in x:
        return {"output": torch.nn.functional.interpolate(torch.from_numpy(x["x"]), **kwargs).numpy()}
    leaf = torch.tensor(x["x"], requires_grad=True)
    out = torch.nn.functional.interpolate(leaf, **kwargs)
    out.backward(torch.from_numpy(x["cotangent"]))
    return {"output": out.detach().numpy(), "grad_x": leaf.grad.numpy()}


# --------------------------------------------------------------------------------- onnxruntime
ONNX_CROP_ROI = [0.2, 0.1, 0.9, 1.2]  # (y1, x1, y2, x2) of the tf_crop_and_resize cases
ONNX_TAGS = {
    "coordinate_transformation_mode": "",
    "nearest_mode": "",
    "cubic_coeff_a": "a",
    "exclude_outside": "exclude",
    "antialias": "aa",
    "extrapolation_value": "extrapolate",
}
COORDINATE_MODES = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
    "tf_crop_and_resize",
)


def _onnx_case(attrs: dict, shape: str, dtype: str = "float32", opset: int = 19, layout: str = "NCHW", **extra) -> Case:
    """One Resize (or Upsample) node; scales / sizes / roi as full-rank vectors in X's axis order."""
    (h, w), kind, value = SHAPES[shape]
    x_shape = (1, 2, h, w) if layout == "NCHW" else (1, h, w, 2)
    spatial = (2, 3) if layout == "NCHW" else (1, 2)
    op = extra.pop("op", "Resize")
    label = extra.pop("label", shape)
    kwargs = dict(attrs)
    if kind == "size" and op == "Resize" and opset > 10:
        sizes = list(x_shape)
        sizes[spatial[0]], sizes[spatial[1]] = value
        kwargs["sizes"] = sizes
    else:
        scale = extra.pop("scales", (value, value) if kind == "scale" else None)
        if scale is None:
            raise ValueError(f"opset {opset} {op} takes scales, not the sizes of {shape}")
        scales = [1.0] * 4
        scales[spatial[0]], scales[spatial[1]] = scale
        kwargs["scales"] = scales
    if attrs.get("coordinate_transformation_mode") == "tf_crop_and_resize":
        y1, x1, y2, x2 = ONNX_CROP_ROI
        roi = [0.0] * 4 + [1.0] * 4
        roi[spatial[0]], roi[spatial[1]], roi[4 + spatial[0]], roi[4 + spatial[1]] = y1, x1, y2, x2
        kwargs["roi"] = roi
    tag = "u8" if dtype == "uint8" else "f32"
    parts = [op.lower(), f"opset{opset}", layout.lower(), attrs["mode"]]
    parts += [f"{ONNX_TAGS[k]}{fmt(v) if isinstance(v, float) else v}" for k, v in sorted(attrs.items()) if k != "mode"]
    name = ".".join(parts + [label, tag])
    return _case(name, op.lower(), dtype, kwargs, x_shape, False, opset=opset, layout=layout)


def onnxruntime_resize_cases() -> list[Case]:
    """Resize 10 / 11 / 13 / 18 / 19 and Upsample 7 / 9: every coordinate mode, nearest mode and flag."""
    cases = []
    rotation = ("5x7to3x4", "3x3to7x7", "5x7s1.7")
    for i, mode in enumerate(COORDINATE_MODES):
        for j, method in enumerate(("nearest", "linear", "cubic")):
            attrs = {"mode": method, "coordinate_transformation_mode": mode}
            if mode == "tf_crop_and_resize":
                attrs["extrapolation_value"] = -7.0
            cases.append(_onnx_case(attrs, rotation[(i + j) % 3]))
    for nearest in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
        cases.append(_onnx_case({"mode": "nearest", "nearest_mode": nearest}, "10x10s0.6"))
    cases.append(_onnx_case({"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                             "nearest_mode": "round_prefer_ceil"}, "3x3to7x7"))  # fmt: skip
    for attrs, shape in (
        ({"mode": "cubic", "cubic_coeff_a": -0.5}, "5x7to3x4"),
        ({"mode": "cubic", "exclude_outside": 1}, "3x3to7x7"),
        ({"mode": "cubic", "antialias": 1}, "8x12to4x6"),
        ({"mode": "cubic", "antialias": 1, "exclude_outside": 1}, "5x7to3x4"),
        ({"mode": "linear", "antialias": 1}, "8x12to4x6"),
        ({"mode": "linear", "antialias": 1, "exclude_outside": 1, "coordinate_transformation_mode": "align_corners"},
         "5x7to3x4"),
    ):  # fmt: skip
        cases.append(_onnx_case(attrs, shape))
    cases.append(_onnx_case({"mode": "linear"}, "5x7s1.7", layout="NHWC"))
    cases.append(_onnx_case({"mode": "nearest"}, "5x7s1.7", opset=10))
    cases.append(_onnx_case({"mode": "linear"}, "10x10s0.6", opset=10))
    cases.append(_onnx_case({"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize"}, "5x7to3x4",
                            opset=11))  # fmt: skip
    cases.append(_onnx_case({"mode": "cubic", "coordinate_transformation_mode": "align_corners"}, "3x3to7x7", opset=13))
    cases.append(_onnx_case({"mode": "linear", "antialias": 1}, "8x12to4x6", opset=18))
    cases.append(
        _onnx_case({"mode": "nearest"}, "5x7s1.7", opset=7, op="Upsample", scales=(1.7, 2.0), label="5x7s1.7x2")
    )
    cases.append(
        _onnx_case({"mode": "linear"}, "5x7s1.7", opset=9, op="Upsample", scales=(3.0, 1.5), label="5x7s3x1.5")
    )
    for attrs, shape, layout in (
        ({"mode": "nearest"}, "5x7s1.7", "NCHW"),
        ({"mode": "linear"}, "3x3to7x7", "NCHW"),
        ({"mode": "linear", "coordinate_transformation_mode": "asymmetric"}, "5x7s1.7", "NCHW"),
        ({"mode": "linear"}, "3x3to7x7", "NHWC"),
        ({"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": -7.0},
         "5x7to3x4", "NCHW"),
        ({"mode": "linear", "antialias": 1}, "8x12to4x6", "NCHW"),
        ({"mode": "cubic", "antialias": 1}, "5x7to3x4", "NHWC"),
    ):  # fmt: skip
        cases.append(_onnx_case(attrs, shape, "uint8", layout=layout))
    # uint8 NHWC with only the width resized: onnxruntime's NCHW kernel over (W, C).
    cases.append(
        _onnx_case({"mode": "linear"}, "5x7s1.7", "uint8", layout="NHWC", scales=(1.0, 1.7), label="5x7s1x1.7")
    )
    return cases


def onnx_resize_model(case: Case) -> Any:
    """A one-node Resize / Upsample model with constant roi / scales / sizes initializers."""
    from onnx import helper, numpy_helper

    p, x = case["params"], case["inputs"]["x"]
    kwargs, opset = dict(p["kwargs"]), p["opset"]
    initializers, inputs = [], ["X"]

    def constant(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(value, name))
        return name

    scales = kwargs.pop("scales", None)
    sizes = kwargs.pop("sizes", None)
    roi = kwargs.pop("roi", None)
    attrs = dict(kwargs)
    if p["op"] == "upsample" and opset < 9:
        attrs["scales"] = [float(s) for s in scales]
    elif p["op"] == "upsample" or opset == 10:
        inputs.append(constant("scales", np.asarray(scales, np.float32)))
    else:
        roi_name = constant("roi", np.asarray(roi if roi is not None else [], np.float32))
        if sizes is not None:
            scales_name = constant("scales", np.zeros(0, np.float32)) if opset == 11 else ""
            inputs += [roi_name, scales_name, constant("sizes", np.asarray(sizes, np.int64))]
        else:
            inputs += [roi_name, constant("scales", np.asarray(scales, np.float32))]
    node = helper.make_node("Upsample" if p["op"] == "upsample" else "Resize", inputs, ["Y"], **attrs)
    elem = helper.np_dtype_to_tensor_dtype(x.dtype)
    graph = helper.make_graph(
        [node],
        "resize",
        [helper.make_tensor_value_info("X", elem, x.shape)],
        [helper.make_tensor_value_info("Y", elem, None)],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def run_onnxruntime_resize(case: Case) -> dict[str, np.ndarray]:
    """One Resize / Upsample node through onnxruntime's CPU provider."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    model = onnx_resize_model(case)
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"X": case["inputs"]["x"]})
    return {"output": output}


# ---------------------------------------------------------------------------------- TensorFlow
TF2_TABLE: list[tuple[str, bool, str]] = [
    ("bilinear", False, "5x7to3x4"),
    ("bilinear", True, "8x12to4x6"),
    ("bicubic", False, "3x3to7x7"),
    ("bicubic", True, "5x7to3x4"),
    ("nearest", False, "7x5to5x3"),
    ("area", False, "5x7to3x4"),
    ("area", False, "3x3to7x7"),
    ("lanczos3", False, "5x7to3x4"),
    ("lanczos5", True, "8x12to4x6"),
    ("gaussian", False, "3x3to7x7"),
    ("mitchellcubic", True, "5x7to3x4"),
]
TF1_TABLE: list[tuple[str, bool, bool, str]] = [
    ("bilinear", False, False, "5x7to3x4"),
    ("bilinear", True, False, "3x3to7x7"),
    ("bilinear", False, True, "7x5to5x3"),
    ("nearest", False, False, "3x3to7x7"),
    ("nearest", True, False, "5x7to3x4"),
    ("nearest", False, True, "7x5to5x3"),
    ("bicubic", False, False, "3x3to7x7"),
    ("bicubic", True, False, "7x5to5x3"),
    ("bicubic", False, True, "5x7to3x4"),
    ("area", False, False, "7x5to5x3"),
    ("area", True, False, "3x3to7x7"),
]


def _tf_case(op: str, kwargs: dict, shape: str, dtype: str = "float32") -> Case:
    (h, w), _, size = SHAPES[shape]
    kwargs = {"size": list(size), **kwargs}
    flags = "".join(f".{k}{int(v)}" for k, v in sorted(kwargs.items()) if isinstance(v, bool))
    name = f"{op}.{kwargs['method']}{flags}.{shape}.{'u8' if dtype == 'uint8' else 'f32'}"
    gradient = kwargs["method"] != "area" and dtype != "uint8"  # TensorFlow has no gradient for area
    return _case(name, op, dtype, kwargs, (1, h, w, 2), gradient)


def tensorflow_resize_cases() -> list[Case]:
    """tf.image.resize (every method, antialias, preserve_aspect_ratio, uint8) and the TF 1 kernels."""
    cases = [_tf_case("resize", {"method": m, "antialias": aa}, shape) for m, aa, shape in TF2_TABLE]
    cases.append(_tf_case("resize", {"method": "bilinear", "preserve_aspect_ratio": True}, "3x3to7x7"))
    cases.append(_tf_case("resize", {"method": "bilinear"}, "3x3to7x7", "uint8"))
    cases.append(_tf_case("resize", {"method": "nearest"}, "5x7to3x4", "uint8"))
    for method, align, half, shape in TF1_TABLE:
        kwargs = {"method": method, "align_corners": align}
        if method != "area":
            kwargs["half_pixel_centers"] = half
        cases.append(_tf_case("resize_v1", kwargs, shape))
    return cases


TF1_FUNCTIONS = {
    "bilinear": "resize_bilinear",
    "nearest": "resize_nearest_neighbor",
    "bicubic": "resize_bicubic",
    "area": "resize_area",
}


def run_tensorflow_resize(case: Case) -> dict[str, np.ndarray]:
    """tf.image.resize or tf.compat.v1.image.resize_*, with the VJP (GradientTape) where TF has one."""
    import tensorflow as tf

    p, x = case["params"], case["inputs"]
    kwargs = dict(p["kwargs"])
    size, method = tuple(kwargs.pop("size")), kwargs.pop("method")
    if p["op"] == "resize":
        fn = functools.partial(tf.image.resize, size=size, method=method, **kwargs)
    else:
        fn = functools.partial(getattr(tf.compat.v1.image, TF1_FUNCTIONS[method]), size=size, **kwargs)
    image = tf.constant(x["x"])
    with tf.GradientTape() as tape:
        tape.watch(image)
        output = fn(image)
    result = {"output": output.numpy()}
    if "cotangent" in x:
        result["grad_x"] = tape.gradient(output, image, output_gradients=tf.constant(x["cotangent"])).numpy()
    return result


# -------------------------------------------------------------------------------------- OpenCV
OPENCV_CODES = {"nearest": 0, "linear": 1, "cubic": 2, "area": 3, "nearest_exact": 6}
OPENCV_TABLE: list[tuple[str, str]] = [
    ("nearest", "5x7to3x4"),
    ("nearest_exact", "3x3to7x7"),
    ("linear", "5x7s1.7"),
    ("linear", "8x12to4x6"),  # an exact 2x downscale: OpenCV switches to INTER_AREA
    ("cubic", "3x3to7x7"),
    ("area", "7x5to5x3"),
    ("area", "8x12to4x6"),
    ("area", "3x3to7x7"),
]


def opencv_cases() -> list[Case]:
    """cv2.resize: every interpolation, float32 and uint8, dsize and fx / fy (HWC with 3 channels)."""
    cases = []
    for dtype in ("float32", "uint8"):
        for interpolation, shape in OPENCV_TABLE:
            (h, w), kind, value = SHAPES[shape]
            kwargs = {"interpolation": OPENCV_CODES[interpolation]}
            if kind == "size":
                kwargs["dsize"] = [value[1], value[0]]
            else:
                kwargs.update(dsize=None, fx=value, fy=value)
            name = f"resize.{interpolation}.{shape}.{'u8' if dtype == 'uint8' else 'f32'}"
            # uint8 INTER_CUBIC runs through IPP in the OpenCV wheels, up to 1 away from OpenCV's own code.
            extra = {"atol": 1} if (dtype, interpolation) == ("uint8", "cubic") else {}
            cases.append(_case(name, "resize", dtype, kwargs, (h, w, 3), False, **extra))
    return cases


def run_opencv(case: Case) -> dict[str, np.ndarray]:
    import cv2

    kwargs = dict(case["params"]["kwargs"])
    dsize = kwargs.pop("dsize")
    return {"output": cv2.resize(case["inputs"]["x"], None if dsize is None else tuple(dsize), **kwargs)}


# ------------------------------------------------------------------------------------- Chainer
CHAINER_TABLE: list[tuple[str, bool, str]] = [
    ("bilinear", True, "5x7to3x4"),
    ("bilinear", False, "3x3to7x7"),
    ("bilinear", False, "4x6to8x12"),
    ("nearest", True, "7x5to5x3"),
]


def chainer_cases() -> list[Case]:
    """chainer.functions.resize_images: bilinear with and without align_corners, nearest (float32)."""
    cases = []
    for mode, align, shape in CHAINER_TABLE:
        (h, w), _, size = SHAPES[shape]
        kwargs = {"output_shape": list(size), "mode": mode, "align_corners": align}
        cases.append(_case(f"resize_images.{mode}.ac{int(align)}.{shape}.f32", "resize_images", "float32", kwargs,
                           (1, 2, h, w), True))  # fmt: skip
    return cases


def chainer_available() -> bool:
    python = os.environ.get(CHAINER_PYTHON)
    return python is not None and Path(python).is_file()


_CHAINER_SCRIPT = """
import json, sys
import numpy as np, chainer, chainer.functions as F
data = dict(np.load(sys.argv[1]))
out = {}
for name, kwargs in json.loads(sys.argv[3]).items():
    x = chainer.Variable(data[name + ".x"])
    y = F.resize_images(x, tuple(kwargs["output_shape"]), mode=kwargs["mode"], align_corners=kwargs["align_corners"])
    y.grad = data[name + ".cotangent"]
    y.backward()
    out[name + ".output"], out[name + ".grad_x"] = y.array, x.grad
np.savez(sys.argv[2], **out)
"""


@functools.cache
def _chainer_outputs() -> dict[str, np.ndarray]:
    """Every chainer case run once, in one subprocess of $JAX_ROIALIGN_CHAINER_PYTHON."""
    cases = chainer_cases()
    with tempfile.TemporaryDirectory() as tmp:
        given, got = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(given, **{f"{c['name']}.{k}": v for c in cases for k, v in c["inputs"].items()})
        kwargs = json.dumps({c["name"]: c["params"]["kwargs"] for c in cases})
        command = [os.environ[CHAINER_PYTHON], "-c", _CHAINER_SCRIPT, str(given), str(got), kwargs]
        subprocess.run(command, check=True, capture_output=True, text=True)
        return dict(np.load(got))


def run_chainer(case: Case) -> dict[str, np.ndarray]:
    """resize_images and its gradient, computed by Chainer in its own interpreter."""
    outputs = _chainer_outputs()
    return {k: outputs[f"{case['name']}.{k}"] for k in ("output", "grad_x")}


def chainer_version() -> str:
    """'chainer X.Y.Z' of $JAX_ROIALIGN_CHAINER_PYTHON, or '' when it is not set."""
    if not chainer_available():
        return ""
    command = [os.environ[CHAINER_PYTHON], "-c", "import chainer; print(chainer.__version__)"]
    done = subprocess.run(command, capture_output=True, text=True)
    return f"chainer {done.stdout.strip()}" if done.returncode == 0 else ""
