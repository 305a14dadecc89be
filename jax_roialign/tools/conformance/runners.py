"""The frameworks (oracles): the modules each needs, its cases, and how to run one case.

No framework is a dependency: each is imported when one of its cases runs.  A runner
returns ``{field: array}``: the outputs, and gradients for a cotangent given among the
inputs.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from jax_roialign.tools.conformance import resize
from jax_roialign.tools.conformance.cases import (
    Case,
    _onnx_node_tests,
    onnx_backend_cases,
    onnxruntime_cases,
    tensorflow_cases,
    torchvision_cases,
)


def _torch_vjp(fn: Callable[[Any], Any], x: np.ndarray, cotangent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fn(x) and the vector-Jacobian product cotangent^T d fn / dx, computed by torch autograd."""
    import torch

    xt = torch.tensor(x, requires_grad=True)
    out = fn(xt)
    out.backward(torch.from_numpy(cotangent))
    return out.detach().numpy(), xt.grad.numpy()


def _kwargs(params: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: params[name] for name in names}


def run_torchvision(case: Case) -> dict[str, np.ndarray]:
    """Run one torchvision case (CPU); roi_align / roi_pool / ps_roi_align / ps_roi_pool also return grad_input,
    and the position-sensitive ops their channel_mapping."""
    import torch
    from torchvision import ops

    p, x = case["params"], case["inputs"]
    if p["op"] == "multi_scale_roi_align":
        pooler = ops.MultiScaleRoIAlign(
            featmap_names=p["featmap_names"],
            output_size=tuple(p["output_size"]),
            sampling_ratio=p["sampling_ratio"],
            canonical_scale=p["canonical_scale"],
            canonical_level=p["canonical_level"],
        )
        feats = {name: torch.from_numpy(x[f"feat.{name}"]) for name in p["featmap_names"]}
        boxes = [torch.from_numpy(x[f"boxes.{i}"]) for i in range(len(p["image_shapes"]))]
        with torch.no_grad():
            out = pooler(feats, boxes, [tuple(s) for s in p["image_shapes"]])
        return {"output": out.numpy()}
    rois = torch.from_numpy(x["rois"])
    size = tuple(p["output_size"])
    if p["op"] in ("ps_roi_align", "ps_roi_pool"):
        # The Python ops return the output only; the registered ops also give the channel each bin read.
        if p["op"] == "ps_roi_align":
            fn = functools.partial(
                ops.ps_roi_align, boxes=rois, output_size=size, **_kwargs(p, "spatial_scale", "sampling_ratio")
            )
            _, mapping = torch.ops.torchvision.ps_roi_align(
                torch.from_numpy(x["input"]), rois, p["spatial_scale"], *size, p["sampling_ratio"]
            )
        else:
            fn = functools.partial(ops.ps_roi_pool, boxes=rois, output_size=size, spatial_scale=p["spatial_scale"])
            _, mapping = torch.ops.torchvision.ps_roi_pool(
                torch.from_numpy(x["input"]), rois, p["spatial_scale"], *size
            )
        output, grad_input = _torch_vjp(fn, x["input"], x["cotangent"])
        return {"output": output, "grad_input": grad_input, "channel_mapping": mapping.numpy()}
    if p["op"] == "roi_align":
        fn = functools.partial(
            ops.roi_align,
            boxes=rois,
            output_size=tuple(p["output_size"]),
            spatial_scale=p["spatial_scale"],
            sampling_ratio=p["sampling_ratio"],
            aligned=p["aligned"],
        )
    elif p["op"] == "roi_pool":
        fn = functools.partial(
            ops.roi_pool, boxes=rois, output_size=tuple(p["output_size"]), spatial_scale=p["spatial_scale"]
        )
    else:
        raise ValueError(f"unknown torchvision op {p['op']!r}")
    output, grad_input = _torch_vjp(fn, x["input"], x["cotangent"])
    return {"output": output, "grad_input": grad_input}


def ort_roi_align_model(params: dict[str, Any], inputs: dict[str, np.ndarray]) -> Any:
    """A one-node RoiAlign onnx.ModelProto for params (opset 10 has no coordinate mode)."""
    from onnx import TensorProto, helper

    opset = params["opset"]
    attrs = {k: params[k] for k in ("mode", "output_height", "output_width", "sampling_ratio", "spatial_scale")}
    if opset >= 16:
        attrs["coordinate_transformation_mode"] = params["coordinate_transformation_mode"]
    elif params["coordinate_transformation_mode"] != "output_half_pixel":
        raise ValueError("RoiAlign-10 always uses output_half_pixel")
    elem = helper.np_dtype_to_tensor_dtype(inputs["X"].dtype)
    node = helper.make_node("RoiAlign", ["X", "rois", "batch_indices"], ["Y"], **attrs)
    graph = helper.make_graph(
        [node],
        "roi_align",
        [
            helper.make_tensor_value_info("X", elem, inputs["X"].shape),
            helper.make_tensor_value_info("rois", elem, inputs["rois"].shape),
            helper.make_tensor_value_info("batch_indices", TensorProto.INT64, inputs["batch_indices"].shape),
        ],
        [helper.make_tensor_value_info("Y", elem, None)],
    )
    return helper.make_model_gen_version(graph, opset_imports=[helper.make_opsetid("", opset)])


def run_onnxruntime(case: Case) -> dict[str, np.ndarray]:
    """Run one RoiAlign case through onnxruntime's CPU provider."""
    import onnxruntime

    x = case["inputs"]
    model = ort_roi_align_model(case["params"], x)
    onnxruntime.set_default_logger_severity(3)  # silence the per-node warning that max mode is "incorrect"
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {k: x[k] for k in ("X", "rois", "batch_indices")})
    return {"output": output}


def run_tensorflow(case: Case) -> dict[str, np.ndarray]:
    """crop_and_resize and its VJP (GradientTape); grad_image for float images, grad_boxes for bilinear."""
    import tensorflow as tf

    p, x = case["params"], case["inputs"]
    image, boxes = tf.constant(x["image"]), tf.constant(x["boxes"])
    # An integer image has no gradient in TF; only float tensors are watched.
    watched = [boxes] if image.dtype.is_integer else [image, boxes]
    with tf.GradientTape() as tape:
        tape.watch(watched)
        output = tf.image.crop_and_resize(
            image,
            boxes,
            tf.constant(x["box_indices"]),
            p["crop_size"],
            method=p["method"],
            extrapolation_value=p["extrapolation_value"],
        )
    grads = tape.gradient(output, watched, output_gradients=tf.constant(x["cotangent"]))
    result = {"output": output.numpy()}
    if not image.dtype.is_integer:
        result["grad_image"] = grads[0].numpy()
    if p["method"] == "bilinear":
        result["grad_boxes"] = grads[-1].numpy()
    return result


def run_onnx_backend(case: Case) -> dict[str, np.ndarray]:
    """The expected output exactly as the onnx package gives it (not recomputed)."""
    ((_, outputs),) = _onnx_node_tests()[case["params"]["source"]].data_sets
    (output,) = outputs
    return {"output": np.asarray(output)}


@dataclass(frozen=True)
class Framework:
    """An oracle: the modules it needs, its ops, its cases, and how to run one case."""

    name: str
    modules: tuple[str, ...]
    distributions: tuple[str, ...]  # whose versions to report
    ops: tuple[str, ...]  # the params["op"] of its cases, in table order
    cases: Callable[[], list[Case]]
    run: Callable[[Case], dict[str, np.ndarray]]
    check: Callable[[], bool] | None = None  # a further requirement (an oracle in another interpreter)
    version: Callable[[], str] | None = None  # replaces the distribution lookup

    def available(self) -> bool:
        """Whether every module the oracle needs can be imported and its own check, if any, passes."""
        modules = all(importlib.util.find_spec(m) is not None for m in self.modules)
        return modules and (self.check is None or self.check())

    def versions(self) -> str:
        """'dist version, ...' for the installed distributions behind this oracle."""
        if self.version is not None:
            return self.version()
        found = []
        for dist in self.distributions:
            try:
                found.append(f"{dist} {importlib.metadata.version(dist)}")
            except importlib.metadata.PackageNotFoundError:
                continue
        return ", ".join(found)


FRAMEWORKS = {
    f.name: f
    for f in (
        Framework(
            "torchvision",
            ("torch", "torchvision"),
            ("torch", "torchvision"),
            ("roi_align", "roi_pool", "multi_scale_roi_align", "ps_roi_align", "ps_roi_pool"),
            torchvision_cases,
            run_torchvision,
        ),
        # Before tensorflow: torch after TensorFlow in one process segfaults (see command.py).
        Framework(
            "torch",
            ("torch", "torchvision"),
            ("torch", "torchvision"),
            ("interpolate", "paste_masks_in_image"),
            resize.torch_cases,
            resize.run_torch,
        ),
        Framework(
            "onnxruntime",
            ("onnx", "onnxruntime"),
            ("onnx", "onnxruntime"),
            ("roi_align",),
            onnxruntime_cases,
            run_onnxruntime,
        ),
        Framework(
            "tensorflow",
            ("tensorflow",),
            ("tensorflow-cpu", "tensorflow"),
            ("crop_and_resize",),
            tensorflow_cases,
            run_tensorflow,
        ),
        Framework("onnx_backend", ("onnx",), ("onnx",), ("roi_align",), onnx_backend_cases, run_onnx_backend),
        Framework(
            "onnxruntime_resize",
            ("onnx", "onnxruntime"),
            ("onnx", "onnxruntime"),
            ("resize", "upsample"),
            resize.onnxruntime_resize_cases,
            resize.run_onnxruntime_resize,
        ),
        Framework(
            "tensorflow_resize",
            ("tensorflow",),
            ("tensorflow-cpu", "tensorflow"),
            ("resize", "resize_v1"),
            resize.tensorflow_resize_cases,
            resize.run_tensorflow_resize,
        ),
        Framework(
            "opencv",
            ("cv2",),
            ("opencv-python-headless", "opencv-python"),
            ("resize",),
            resize.opencv_cases,
            resize.run_opencv,
        ),
        Framework(
            "chainer",
            (),
            (),
            ("resize_images",),
            resize.chainer_cases,
            resize.run_chainer,
            check=resize.chainer_available,
            version=resize.chainer_version,
        ),
    )
}
