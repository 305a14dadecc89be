"""Cross-framework conformance: the cases, the framework runners and the comparisons.

``python -m jax_roialign check`` runs every case against every installed framework and
prints a pass table; ``tests/fixtures/make_fixtures.py`` freezes the frameworks' outputs
of the same cases as the committed fixtures, and the tests compare with those.  No
framework is a dependency: each is imported when one of its cases runs.

- Cases (:class:`Case`): a unique name, the op's parameters (JSON-serializable) and the
  input arrays, built with numpy from generators seeded by the case name, so a case's
  data never depends on the order or the framework (the exception is the
  ``onnx_backend`` cases, whose inputs are data that the ``onnx`` package ships).
- Frameworks (:data:`FRAMEWORKS`, :class:`Framework`): the modules each needs, its
  ``cases()`` and ``run(case) -> {field: array}`` (outputs, and gradients for a
  cotangent given among the inputs).
- Comparisons (:func:`compare_case`): our result for a case's inputs and parameters,
  through the compat layer, against the framework's arrays.  Float64 cases must agree to
  1e-6 relative, float32 ones to 1e-5, each with an absolute floor of the same size
  times ``max(1, max |theirs|)``: equal up to float rounding.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import importlib.util
import json
import sys
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypedDict

import jax
import jax.numpy as jnp
import numpy as np

import jax_roialign
from jax_roialign.compat import onnx, tensorflow, torchvision

# Feature map (N, C, H, W) of the RoIAlign, RoIPool and onnxruntime cases.
MAP_SHAPE = (2, 3, 12, 14)
# Image (N, H, W, C) of the crop_and_resize cases.
IMAGE_SHAPE = (2, 12, 14, 3)
DTYPE_TAG = {"float64": "f64", "float32": "f32"}


class Case(TypedDict):
    """One fixture case: a unique name, the op's parameters, and its input arrays."""

    name: str
    params: dict[str, Any]
    inputs: dict[str, np.ndarray]


# --------------------------------------------------------------------------------------
# Shared numpy helpers
# --------------------------------------------------------------------------------------


def case_rng(name: str) -> np.random.Generator:
    """A generator seeded from the case name (crc32), so a case's data never depends on order."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def fmt(x: float) -> str:
    """Short, exact-enough text of a float for case names (0.0625 -> '0.0625', 1.0 -> '1')."""
    return f"{x:g}"


def edge_boxes_on_map(height: int, width: int, out_h: int, out_w: int) -> np.ndarray:
    """(K, 4) [x1, y1, x2, y2] boxes in feature-map pixels covering every edge rule.

    Divide by spatial_scale to get image coordinates; scales are powers of two, so the
    round trip through the framework's ``x * spatial_scale`` is exact.
    """
    h, w = float(height), float(width)
    boxes = [
        [0.3 * w, 0.4 * h, 0.3 * w + 0.2, 0.4 * h + 0.3],  # tiny: under one pixel each way
        [0.5 * w, 0.5 * h, 0.5 * w, 0.5 * h],  # zero-size point
        [0.2 * w, 0.3 * h, 0.2 * w, 0.7 * h],  # zero width
        [0.1 * w, 0.6 * h, 0.8 * w, 0.6 * h],  # zero height
        [-0.2 * w, 0.1 * h, 0.3 * w, 0.6 * h],  # straddles the left edge
        [0.3 * w, -0.25 * h, 0.7 * w, 0.35 * h],  # straddles the top edge
        [0.75 * w, 0.2 * h, 1.3 * w, 0.6 * h],  # straddles the right edge
        [0.1 * w, 0.7 * h, 0.5 * w, 1.4 * h],  # straddles the bottom edge
        [-0.9 * w, -0.8 * h, -0.3 * w, -0.2 * h],  # wholly outside, negative coordinates
        [1.2 * w, 1.1 * h, 1.9 * w, 1.6 * h],  # wholly outside, beyond W and H
        [-0.5 * w, -0.4 * h, 1.6 * w, 1.7 * h],  # larger than the map
        [2.0, 1.0, 2.0 + out_w, 1.0 + out_h],  # exactly out_h x out_w pixels
        [0.7 * w, 0.2 * h, 0.3 * w, 0.8 * h],  # inverted in x (x2 < x1)
        [0.5 * w, 0.3 * h, 0.5 * w - 0.3, 0.7 * h],  # inverted in x by under a bin
        [0.8 * w, 0.9 * h, 0.2 * w, 0.3 * h],  # inverted in x and y
    ]
    return np.asarray(boxes, np.float64)


def random_boxes_on_map(rng: np.random.Generator, k: int, height: int, width: int) -> np.ndarray:
    """k ordinary (K, 4) [x1, y1, x2, y2] boxes inside the map, in feature-map pixels."""
    x1 = rng.uniform(0.0, 0.6 * width, k)
    y1 = rng.uniform(0.0, 0.6 * height, k)
    x2 = x1 + rng.uniform(1.0, 0.4 * width, k)
    y2 = y1 + rng.uniform(1.0, 0.4 * height, k)
    return np.stack([x1, y1, x2, y2], axis=1)


def image_boxes(
    rng: np.random.Generator, height: int, width: int, out_h: int, out_w: int, scale: float, n_random: int = 2
) -> np.ndarray:
    """Edge-case plus random (K, 4) [x1, y1, x2, y2] boxes in image coordinates (map / scale)."""
    on_map = np.concatenate(
        [edge_boxes_on_map(height, width, out_h, out_w), random_boxes_on_map(rng, n_random, height, width)]
    )
    return on_map / scale


def batch_of(k: int, n_images: int) -> np.ndarray:
    """Batch index of each of k boxes, cycling over the images so every image gets boxes."""
    return np.arange(k) % n_images


def features(rng: np.random.Generator, shape: Sequence[int], dtype: str) -> np.ndarray:
    """Standard-normal values (no ties, so max-pooling gradients are unambiguous)."""
    return rng.standard_normal(shape).astype(dtype)


def torchvision_rois(boxes: np.ndarray, n_images: int, dtype: str) -> np.ndarray:
    """(K, 5) [batch, x1, y1, x2, y2] rows, the layout of torchvision.ops.roi_align/roi_pool."""
    return np.concatenate([batch_of(len(boxes), n_images)[:, None], boxes], axis=1).astype(dtype)


# --------------------------------------------------------------------------------------
# torchvision: roi_align, roi_pool, MultiScaleRoIAlign
# --------------------------------------------------------------------------------------

# (aligned, sampling_ratio, spatial_scale, output_size, dtype); 1/16 uses large image boxes.
ROI_ALIGN_TABLE: list[tuple[bool, int, float, tuple[int, int], str]] = [
    (False, -1, 1.0, (3, 5), "float64"),
    (False, 1, 0.5, (7, 7), "float64"),
    (False, 2, 0.25, (2, 3), "float64"),
    (False, 3, 1.0, (1, 1), "float64"),
    (False, -1, 0.5, (2, 3), "float64"),
    (True, -1, 0.5, (2, 3), "float64"),
    (True, 1, 1.0, (1, 1), "float64"),
    (True, 2, 1.0, (3, 5), "float64"),
    (True, 3, 0.25, (7, 7), "float64"),
    (True, -1, 1.0, (7, 7), "float64"),
    (False, -1, 1 / 16, (7, 7), "float64"),
    (True, 2, 1 / 16, (3, 5), "float64"),
    (True, -1, 0.25, (3, 5), "float32"),
    (False, 2, 0.5, (2, 3), "float32"),
    (True, 3, 1.0, (1, 1), "float32"),
]

# (spatial_scale, output_size, dtype).
ROI_POOL_TABLE: list[tuple[float, tuple[int, int], str]] = [
    (1.0, (3, 5), "float64"),
    (0.5, (2, 3), "float64"),
    (0.25, (7, 7), "float64"),
    (1 / 16, (3, 3), "float64"),
    (0.5, (1, 1), "float64"),
    (0.25, (2, 3), "float32"),
]

# Boxes (feature-map pixels) whose scaled corners land exactly on .5, where roi_pool's
# round-half-away-from-zero decides, some reaching past the last row/column (clipped bins).
ROI_POOL_HALF_BOXES = np.array(
    [
        [1.5, 2.5, 6.5, 8.5],
        [-1.5, -0.5, 3.5, 4.5],
        [0.5, 0.5, 0.5, 0.5],
        [4.5, 3.5, 13.5, 11.5],
        [-2.5, 9.5, 2.5, 13.5],
    ]
)


def _roi_op_case(name: str, params: dict[str, Any], out_hw: tuple[int, int], boxes: np.ndarray, dtype: str) -> Case:
    """A roi_align / roi_pool case on a MAP_SHAPE map with a random cotangent of the output's shape."""
    rng = case_rng(name)
    n, c = MAP_SHAPE[:2]
    inputs = {
        "input": features(rng, MAP_SHAPE, dtype),
        "rois": torchvision_rois(boxes, n, dtype),
        "cotangent": features(rng, (len(boxes), c, *out_hw), dtype),
    }
    return {"name": name, "params": {**params, "dtype": dtype}, "inputs": inputs}


def adaptive_grid_negative(boxes: np.ndarray, scale: float, out_h: int, out_w: int) -> np.ndarray:
    """Boxes whose adaptive aligned=True grid ceil(roi_h / PH) * ceil(roi_w / PW) is negative.

    torchvision's CPU kernel sizes a buffer by that product and raises ("cannot create
    std::vector larger than max_size()") on such boxes, e.g. one inverted in x by more than
    a bin but not in y, and onnxruntime (half_pixel, sampling_ratio 0) fails with "Integer
    overflow"; so the aligned adaptive cases leave them out.
    """
    grid_w = np.ceil((boxes[:, 2] - boxes[:, 0]) * scale / out_w)
    grid_h = np.ceil((boxes[:, 3] - boxes[:, 1]) * scale / out_h)
    return grid_w * grid_h < 0


def roi_align_cases() -> list[Case]:
    """torchvision.ops.roi_align cases from ROI_ALIGN_TABLE, each with every edge-case box."""
    height, width = MAP_SHAPE[2:]
    cases = []
    for aligned, sr, scale, (ph, pw), dtype in ROI_ALIGN_TABLE:
        kind = "aligned" if aligned else "legacy"
        name = f"roi_align.{kind}.sr{sr}.scale{fmt(scale)}.out{ph}x{pw}.{DTYPE_TAG[dtype]}"
        boxes = image_boxes(case_rng(name + ".boxes"), height, width, ph, pw, scale)
        if aligned and sr <= 0:
            boxes = boxes[~adaptive_grid_negative(boxes, scale, ph, pw)]
        params = {
            "op": "roi_align",
            "output_size": [ph, pw],
            "spatial_scale": scale,
            "sampling_ratio": sr,
            "aligned": aligned,
        }
        cases.append(_roi_op_case(name, params, (ph, pw), boxes, dtype))
    return cases


def roi_pool_cases() -> list[Case]:
    """torchvision.ops.roi_pool cases: edge-case boxes plus ones hitting .5 after scaling."""
    height, width = MAP_SHAPE[2:]
    cases = []
    for scale, (ph, pw), dtype in ROI_POOL_TABLE:
        name = f"roi_pool.scale{fmt(scale)}.out{ph}x{pw}.{DTYPE_TAG[dtype]}"
        edge = image_boxes(case_rng(name + ".boxes"), height, width, ph, pw, scale)
        boxes = np.concatenate([edge, ROI_POOL_HALF_BOXES / scale])
        params = {"op": "roi_pool", "output_size": [ph, pw], "spatial_scale": scale}
        cases.append(_roi_op_case(name, params, (ph, pw), boxes, dtype))
    return cases


@dataclass(frozen=True)
class MultiScaleSpec:
    """One MultiScaleRoIAlign case: levels as {name: 1/stride}, per-image shapes and boxes."""

    name: str
    levels: dict[str, float]
    image_shapes: list[tuple[int, int]]
    boxes: list[list[list[float]]]  # per image, [x1, y1, x2, y2] in image pixels
    output_size: tuple[int, int]
    sampling_ratio: int
    canonical_scale: int = 224
    canonical_level: int = 4
    channels: int = 2
    dtype: str = "float64"


MULTI_SCALE_SPECS = [
    # Three levels (1/4, 1/8, 1/16) of a (200, 264) padded batch: the 1/16 map is
    # ceil(200/16) = 13 rows, so torchvision has to round 13/200 to 2**-4. Image 1 has no box.
    # sqrt(area) = 112 and 224 sit exactly on level boundaries (torchvision's eps decides).
    MultiScaleSpec(
        name="multi_scale_roi_align.3lvl.sr2.out7x7.f64",
        levels={"p2": 1 / 4, "p3": 1 / 8, "p4": 1 / 16},
        image_shapes=[(200, 264), (192, 256), (176, 240)],
        boxes=[
            [
                [10.0, 12.0, 30.0, 40.0],  # small: level 2
                [50.0, 60.0, 162.0, 172.0],  # sqrt(area) = 112 exactly: level 3
                [40.0, 30.0, 151.9, 141.9],  # sqrt(area) just under 112: level 2
                [0.0, 0.0, 224.0, 224.0],  # sqrt(area) = 224 exactly: level 4
                [20.0, 10.0, 244.0, 66.0],  # 224 x 56, sqrt(area) = 112: level 3
                [100.0, 80.0, 250.0, 190.0],  # level 3
                [5.0, 5.0, 260.0, 198.0],  # sqrt(area) ~ 221.9: level 3
                [-20.0, -30.0, 280.0, 230.0],  # beyond the image: level 4
                [60.0, 40.0, 60.5, 40.5],  # tiny: level 2
                [30.0, 30.0, 30.0, 80.0],  # zero area, log2(0) = -inf: clamped to level 2
                [200.0, 150.0, 300.0, 260.0],  # straddles the bottom-right corner
            ],
            [],
            [
                [10.0, 20.0, 100.0, 120.0],
                [0.0, 0.0, 176.0, 240.0],
                [150.0, 100.0, 240.0, 176.0],
                [120.0, 90.0, 460.0, 400.0],  # huge: clamped to level 4
            ],
        ],
        output_size=(7, 7),
        sampling_ratio=2,
    ),
    # Two levels (1/4, 1/8) with a non-default canonical scale and level, adaptive sampling.
    MultiScaleSpec(
        name="multi_scale_roi_align.2lvl.sr-1.out3x5.canon160lvl3.f32",
        levels={"0": 1 / 4, "1": 1 / 8},
        image_shapes=[(128, 160), (120, 150)],
        boxes=[
            [
                [5.0, 5.0, 45.0, 35.0],  # level 2 (clamped up)
                [10.0, 20.0, 90.0, 100.0],  # sqrt(area) = 80: level 2
                [0.0, 0.0, 160.0, 160.0],  # sqrt(area) = 160 = canonical_scale: level 3
                [70.0, 30.0, 110.0, 110.0],  # level 2
            ],
            [
                [20.0, 10.0, 60.0, 50.0],  # level 2
                [-20.0, -10.0, 180.0, 150.0],  # beyond the image: level 3
                [100.0, 60.0, 101.0, 61.0],  # 1 x 1: level 2 (clamped up)
            ],
        ],
        output_size=(3, 5),
        sampling_ratio=-1,
        canonical_scale=160,
        canonical_level=3,
        dtype="float32",
    ),
    # One level: torchvision skips the level mapper and calls roi_align at 1/8 directly.
    MultiScaleSpec(
        name="multi_scale_roi_align.1lvl.sr2.out2x3.f64",
        levels={"p3": 1 / 8},
        image_shapes=[(100, 124), (96, 120)],
        boxes=[[[4.0, 6.0, 60.0, 90.0], [-8.0, 50.0, 40.0, 110.0]], [[30.0, 20.0, 118.0, 70.0]]],
        output_size=(2, 3),
        sampling_ratio=2,
    ),
]


def multi_scale_case(spec: MultiScaleSpec) -> Case:
    """Feature maps sized ceil(max image size * scale), as a padded FPN batch would have."""
    rng = case_rng(spec.name)
    max_h = max(h for h, _ in spec.image_shapes)
    max_w = max(w for _, w in spec.image_shapes)
    n = len(spec.image_shapes)
    inputs = {}
    for level, scale in spec.levels.items():
        shape = (n, spec.channels, int(np.ceil(max_h * scale)), int(np.ceil(max_w * scale)))
        inputs[f"feat.{level}"] = features(rng, shape, spec.dtype)
    for i, boxes in enumerate(spec.boxes):
        inputs[f"boxes.{i}"] = np.asarray(boxes, spec.dtype).reshape(-1, 4)
    params = {
        "op": "multi_scale_roi_align",
        "dtype": spec.dtype,
        "featmap_names": list(spec.levels),
        "output_size": list(spec.output_size),
        "sampling_ratio": spec.sampling_ratio,
        "image_shapes": [list(s) for s in spec.image_shapes],
        "canonical_scale": spec.canonical_scale,
        "canonical_level": spec.canonical_level,
    }
    return {"name": spec.name, "params": params, "inputs": inputs}


def torchvision_cases() -> list[Case]:
    """All torchvision cases: roi_align, roi_pool and MultiScaleRoIAlign."""
    return roi_align_cases() + roi_pool_cases() + [multi_scale_case(s) for s in MULTI_SCALE_SPECS]


def _torch_vjp(fn: Callable[[Any], Any], x: np.ndarray, cotangent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fn(x) and the vector-Jacobian product cotangent^T d fn / dx, computed by torch autograd."""
    import torch

    xt = torch.tensor(x, requires_grad=True)
    out = fn(xt)
    out.backward(torch.from_numpy(cotangent))
    return out.detach().numpy(), xt.grad.numpy()


def run_torchvision(case: Case) -> dict[str, np.ndarray]:
    """Run one torchvision case (CPU); roi_align / roi_pool also return grad_input."""
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


# --------------------------------------------------------------------------------------
# onnxruntime: a one-node RoiAlign model (opset 10 and 16)
# --------------------------------------------------------------------------------------

ORT_VARIANTS = [(10, "output_half_pixel"), (16, "output_half_pixel"), (16, "half_pixel")]
ORT_SCALES = {0: 1.0, 1: 0.5, 2: 0.25}  # spatial_scale per sampling_ratio
ORT_SIZES = [(3, 5), (2, 3), (1, 1), (7, 7)]
# (opset, coordinate_transformation_mode, mode, sampling_ratio) also run in float64.
ORT_FLOAT64 = [(16, "half_pixel", "avg", 0), (16, "output_half_pixel", "max", 1), (10, "output_half_pixel", "avg", 2)]


def _ort_case(opset: int, ctm: str, mode: str, sr: int, out: tuple[int, int], dtype: str) -> Case:
    """One onnxruntime RoiAlign case on a MAP_SHAPE map with every edge-case box."""
    ph, pw = out
    scale = ORT_SCALES[sr]
    ctm_tag = "half" if ctm == "half_pixel" else "outhalf"
    name = f"roi_align.opset{opset}.{ctm_tag}.{mode}.sr{sr}.scale{fmt(scale)}.out{ph}x{pw}.{DTYPE_TAG[dtype]}"
    rng = case_rng(name)
    boxes = image_boxes(rng, MAP_SHAPE[2], MAP_SHAPE[3], ph, pw, scale)
    if ctm == "half_pixel" and sr == 0:  # onnxruntime fails with "Integer overflow" on these
        boxes = boxes[~adaptive_grid_negative(boxes, scale, ph, pw)]
    params = {
        "op": "roi_align",
        "dtype": dtype,
        "opset": opset,
        "mode": mode,
        "output_height": ph,
        "output_width": pw,
        "sampling_ratio": sr,
        "spatial_scale": scale,
        "coordinate_transformation_mode": ctm,
    }
    inputs = {
        "X": features(rng, MAP_SHAPE, dtype),
        "rois": boxes.astype(dtype),
        "batch_indices": batch_of(len(boxes), MAP_SHAPE[0]).astype(np.int64),
    }
    return {"name": name, "params": params, "inputs": inputs}


def onnxruntime_cases() -> list[Case]:
    """Opset 10 / 16 x both coordinate modes x avg / max x sampling_ratio 0, 1, 2 (float32), plus float64."""
    cases = []
    variants = [(o, c, m, s) for o, c in ORT_VARIANTS for m in ("avg", "max") for s in ORT_SCALES]
    for i, (opset, ctm, mode, sr) in enumerate(variants):
        cases.append(_ort_case(opset, ctm, mode, sr, ORT_SIZES[i % len(ORT_SIZES)], "float32"))
    for i, (opset, ctm, mode, sr) in enumerate(ORT_FLOAT64):
        cases.append(_ort_case(opset, ctm, mode, sr, ORT_SIZES[(i + 1) % len(ORT_SIZES)], "float64"))
    return cases


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


# --------------------------------------------------------------------------------------
# tensorflow: tf.image.crop_and_resize
# --------------------------------------------------------------------------------------

# Normalized [y1, x1, y2, x2] boxes covering every edge rule of crop_and_resize.
TF_EDGE_BOXES = np.array(
    [
        [0.2, 0.1, 0.7, 0.8],  # inside
        [0.0, 0.0, 1.0, 1.0],  # the whole image
        [-0.3, 0.2, 0.4, 0.6],  # straddles the top
        [0.5, 0.7, 0.9, 1.4],  # straddles the right
        [0.6, -0.2, 1.3, 0.3],  # straddles the bottom and the left
        [-0.8, -0.6, -0.2, -0.1],  # wholly outside, negative
        [1.1, 1.2, 1.7, 1.9],  # wholly outside, beyond 1
        [-0.5, -0.4, 1.5, 1.6],  # larger than the image
        [0.8, 0.3, 0.2, 0.7],  # flipped in y (y1 > y2)
        [0.1, 0.9, 0.6, 0.2],  # flipped in x (x1 > x2)
        [0.45, 0.3, 0.45, 0.3],  # zero size
        [0.33, 0.52, 0.36, 0.57],  # tiny
    ]
)


def crop_and_resize_cases() -> list[Case]:
    """bilinear / nearest x crop sizes (1,1), (1,4), (3,5) x extrapolation_value 0 / 0.75 (float32)."""
    cases = []
    for method in ("bilinear", "nearest"):
        for ch, cw in ((1, 1), (1, 4), (3, 5)):
            for extrapolation in (0.0, 0.75):
                name = f"crop_and_resize.{method}.crop{ch}x{cw}.extrap{fmt(extrapolation)}.f32"
                rng = case_rng(name)
                lo = rng.uniform(0.0, 0.6, (2, 2))
                random_boxes = np.concatenate([lo, lo + rng.uniform(0.1, 0.4, (2, 2))], axis=1)
                boxes = np.concatenate([TF_EDGE_BOXES, random_boxes]).astype(np.float32)
                params = {
                    "op": "crop_and_resize",
                    "dtype": "float32",
                    "crop_size": [ch, cw],
                    "method": method,
                    "extrapolation_value": extrapolation,
                }
                inputs = {
                    "image": features(rng, IMAGE_SHAPE, "float32"),
                    "boxes": boxes,
                    "box_indices": batch_of(len(boxes), IMAGE_SHAPE[0]).astype(np.int32),
                    "cotangent": features(rng, (len(boxes), ch, cw, IMAGE_SHAPE[3]), "float32"),
                }
                cases.append({"name": name, "params": params, "inputs": inputs})
    return cases


def tensorflow_cases() -> list[Case]:
    """All tensorflow cases (crop_and_resize)."""
    return crop_and_resize_cases()


def run_tensorflow(case: Case) -> dict[str, np.ndarray]:
    """crop_and_resize and its VJP (GradientTape); grad_boxes only for bilinear."""
    import tensorflow as tf

    p, x = case["params"], case["inputs"]
    image, boxes = tf.constant(x["image"]), tf.constant(x["boxes"])
    with tf.GradientTape() as tape:
        tape.watch([image, boxes])
        output = tf.image.crop_and_resize(
            image,
            boxes,
            tf.constant(x["box_indices"]),
            p["crop_size"],
            method=p["method"],
            extrapolation_value=p["extrapolation_value"],
        )
    grad_image, grad_boxes = tape.gradient(output, [image, boxes], output_gradients=tf.constant(x["cotangent"]))
    result = {"output": output.numpy(), "grad_image": grad_image.numpy()}
    if p["method"] == "bilinear":
        result["grad_boxes"] = grad_boxes.numpy()
    return result


# --------------------------------------------------------------------------------------
# onnx_backend: the onnx package's own RoiAlign node tests
# --------------------------------------------------------------------------------------

ONNX_DEFAULTS = {"mode": "avg", "output_height": 1, "output_width": 1, "sampling_ratio": 0, "spatial_scale": 1.0}


@functools.cache
def _onnx_node_tests() -> dict[str, Any]:
    """The onnx package's RoiAlign node TestCases by name (the data of test_roialign_*/)."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():  # importing every node-test module warns about unrelated ops
        warnings.simplefilter("ignore")
        return {tc.name: tc for tc in collect_testcases("RoiAlign") if tc.model.graph.node[0].op_type == "RoiAlign"}


def onnx_backend_cases() -> list[Case]:
    """One case per onnx RoiAlign node test; params are the node's attributes with defaults filled in.

    Needs the onnx package: the inputs are data it ships (onnx/backend/test/case/node/roialign.py,
    the source of the test_roialign_*/ directories).
    """
    from onnx import helper

    cases = []
    for source, tc in sorted(_onnx_node_tests().items()):
        (node,) = tc.model.graph.node
        opset = next(o.version for o in tc.model.opset_import if o.domain in ("", "ai.onnx"))
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
        default_ctm = "half_pixel" if opset >= 16 else "output_half_pixel"
        ((inputs, _),) = tc.data_sets
        arrays = dict(zip(("X", "rois", "batch_indices"), inputs, strict=True))
        params = {
            "op": "roi_align",
            "dtype": str(arrays["X"].dtype),
            "opset": opset,
            **ONNX_DEFAULTS,
            **attrs,
            "coordinate_transformation_mode": attrs.get("coordinate_transformation_mode", default_ctm),
            "source": source,
            "rtol": tc.rtol,
            "atol": tc.atol,
        }
        cases.append(
            {"name": f"roi_align.onnx.{source.removeprefix('test_roialign_')}", "params": params, "inputs": arrays}
        )
    return cases


def run_onnx_backend(case: Case) -> dict[str, np.ndarray]:
    """The expected output exactly as the onnx package gives it (not recomputed)."""
    ((_, outputs),) = _onnx_node_tests()[case["params"]["source"]].data_sets
    (output,) = outputs
    return {"output": np.asarray(output)}


# --------------------------------------------------------------------------------------
# The frameworks
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Framework:
    """An oracle: the modules it needs, its ops, its cases, and how to run one case."""

    name: str
    modules: tuple[str, ...]
    distributions: tuple[str, ...]  # whose versions to report
    ops: tuple[str, ...]  # the params["op"] of its cases, in table order
    cases: Callable[[], list[Case]]
    run: Callable[[Case], dict[str, np.ndarray]]

    def available(self) -> bool:
        """Whether every module the oracle needs can be imported."""
        return all(importlib.util.find_spec(m) is not None for m in self.modules)

    def versions(self) -> str:
        """'dist version, ...' for the installed distributions behind this oracle."""
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
            ("roi_align", "roi_pool", "multi_scale_roi_align"),
            torchvision_cases,
            run_torchvision,
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
    )
}


# --------------------------------------------------------------------------------------
# Comparisons: ours (through jax_roialign.compat) against a framework's arrays
# --------------------------------------------------------------------------------------

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
    """Output, image gradient and (bilinear) box gradient of tf.image.crop_and_resize."""

    def f(image, boxes):
        return tensorflow.crop_and_resize(
            image,
            boxes,
            jnp.asarray(arrays["box_indices"]),
            tuple(params["crop_size"]),
            params["method"],
            params["extrapolation_value"],
        )

    out, vjp = jax.vjp(f, jnp.asarray(arrays["image"], jnp.float32), jnp.asarray(arrays["boxes"], jnp.float32))
    grad_image, grad_boxes = vjp(jnp.asarray(arrays["cotangent"], jnp.float32))
    results = [
        compare_rounding("output", out, arrays["output"], "float32"),
        compare_rounding("grad_image", grad_image, arrays["grad_image"], "float32"),
    ]
    if "grad_boxes" in arrays:
        # Box gradients sum many products of differences: float32 cancellation, hence 1e-4.
        results.append(compare_rounding("grad_boxes", grad_boxes, arrays["grad_boxes"], "float32", tol=1e-4))
    return results


COMPARISONS: dict[tuple[str, str], Callable[[dict, dict[str, np.ndarray]], list[FieldResult]]] = {
    ("torchvision", "roi_align"): functools.partial(_torchvision_roi_op, torchvision.roi_align),
    ("torchvision", "roi_pool"): functools.partial(_torchvision_roi_op, torchvision.roi_pool),
    ("torchvision", "multi_scale_roi_align"): _torchvision_multi_scale_roi_align,
    ("onnxruntime", "roi_align"): _onnxruntime_roi_align,
    ("onnx_backend", "roi_align"): _onnx_backend_roi_align,
    ("tensorflow", "crop_and_resize"): _tensorflow_crop_and_resize,
}


# The (framework, op) pairs whose op takes impl=, so that a case can run on either implementation.
SELECTS_IMPL: frozenset[tuple[str, str]] = frozenset(
    {("torchvision", "roi_align"), ("onnxruntime", "roi_align"), ("onnx_backend", "roi_align")}
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


# --------------------------------------------------------------------------------------
# The check: every case of every installed framework, summarized per framework x op
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    """One case run by a framework and compared; error holds the exception if either side raised."""

    name: str
    op: str
    fields: tuple[FieldResult, ...]
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(f.passed for f in self.fields)


def run_case(framework: Framework, case: Case) -> CaseResult:
    """Run case through framework and compare ours with it; an exception becomes a failed result."""
    op = case["params"]["op"]
    try:
        outputs = framework.run(case)
        fields = compare_case(framework.name, case["params"], {**case["inputs"], **outputs})
    except Exception as err:  # a framework version that rejects a case is a finding to report, not a crash
        return CaseResult(case["name"], op, (), f"{type(err).__name__}: {err}")
    return CaseResult(case["name"], op, tuple(fields))


@dataclass(frozen=True)
class Row:
    """One line of the table: a framework's cases of one op.  Errors are None when nothing was compared."""

    framework: str
    op: str
    installed: bool
    versions: str
    passed: int
    total: int
    max_abs: float | None
    max_rel: float | None
    failures: tuple[str, ...]  # "case: what failed"


def _failure(result: CaseResult) -> str:
    if result.error is not None:
        return f"{result.name}: {result.error}"
    bad = [
        f"{f.field} max abs {f.max_abs:.2g} (atol {f.atol:.2g}, rtol {f.rtol:.2g})"
        for f in result.fields
        if not f.passed
    ]
    return f"{result.name}: {'; '.join(bad)}"


def summarize(framework: Framework, op: str, results: Sequence[CaseResult]) -> Row:
    """The row of framework x op from the results of its cases of that op."""
    fields = [f for r in results for f in r.fields]
    return Row(
        framework=framework.name,
        op=op,
        installed=True,
        versions=framework.versions(),
        passed=sum(r.passed for r in results),
        total=len(results),
        max_abs=max((f.max_abs for f in fields), default=None),
        max_rel=max((f.max_rel for f in fields), default=None),
        failures=tuple(_failure(r) for r in results if not r.passed),
    )


def check_framework(framework: Framework) -> tuple[list[Row], list[CaseResult]]:
    """Rows (one per op of framework) and per-case results; rows marked not installed if it is not."""
    if not framework.available():
        row = Row(framework.name, "", False, "", 0, 0, None, None, ())
        return [replace(row, op=op) for op in framework.ops], []
    results = [run_case(framework, case) for case in framework.cases()]
    unknown = {r.op for r in results} - set(framework.ops)
    if unknown:
        raise ValueError(f"{framework.name} has cases of ops {sorted(unknown)} outside its ops {framework.ops}")
    rows = [summarize(framework, op, [r for r in results if r.op == op]) for op in framework.ops]
    return rows, results


def _error_text(value: float | None) -> str:
    return "" if value is None else f"{value:.1e}"


def markdown_table(rows: Sequence[Row]) -> str:
    """The pass table: framework, op, cases passed / total, max abs and relative error, versions."""
    lines = [
        "| framework | op | passed | max abs error | max rel error | versions |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        if not row.installed:
            lines.append(f"| {row.framework} | {row.op} | not installed | | | |")
            continue
        errors = f"{_error_text(row.max_abs)} | {_error_text(row.max_rel)}"
        lines.append(f"| {row.framework} | {row.op} | {row.passed}/{row.total} | {errors} | {row.versions} |")
    return "\n".join(lines)


def environment() -> dict[str, str]:
    """Versions of Python, numpy, jax and jax_roialign, and the JAX backend."""
    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "jax": jax.__version__,
        "jax_roialign": jax_roialign.__version__,
        "backend": jax.default_backend(),
    }


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Flags of ``check``: --framework NAME (repeatable), --json PATH."""
    parser.add_argument(
        "--framework",
        action="append",
        choices=list(FRAMEWORKS),
        help="framework to check against (repeatable; default: all, the missing ones reported as not installed)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows and every case's result here")


def run(args: argparse.Namespace) -> int:
    """Check the chosen frameworks, print the table and failures; 1 if any case failed, else 0."""
    rows: list[Row] = []
    results: dict[str, list[CaseResult]] = {}
    for name in dict.fromkeys(args.framework or FRAMEWORKS):
        framework = FRAMEWORKS[name]
        if framework.available():
            print(f"checking {name} ...", file=sys.stderr, flush=True)
        framework_rows, results[name] = check_framework(framework)
        rows.extend(framework_rows)
    print(markdown_table(rows))
    failures = [f"{row.framework} {row.op}: {failure}" for row in rows for failure in row.failures]
    if failures:
        print("\nfailed cases:")
        print("\n".join(f"  {line}" for line in failures))
    if args.json is not None:
        report = {
            "passed": not failures,
            "environment": environment(),
            "rows": [asdict(row) for row in rows],
            "cases": {name: [{**asdict(r), "passed": r.passed} for r in rs] for name, rs in results.items()},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if failures else 0
