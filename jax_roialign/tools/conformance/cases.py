"""The conformance cases: a unique name, the op's parameters and its input arrays, per framework.

Inputs are built with numpy from generators seeded by the case name, so a case's data
never depends on the order or the framework (the exception is the ``onnx_backend``
cases, whose inputs are data that the ``onnx`` package ships).
"""

from __future__ import annotations

import functools
import warnings
import zlib
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import numpy as np

from jax_roialign.tools.problems import edge_boxes_on_map, random_boxes_on_map
from jax_roialign.tools.problems import random_features as features

# Feature map (N, C, H, W) of the RoIAlign, RoIPool and onnxruntime cases.
MAP_SHAPE = (2, 3, 12, 14)
# Image (N, H, W, C) of the crop_and_resize cases.
IMAGE_SHAPE = (2, 12, 14, 3)
DTYPE_TAG = {"float64": "f64", "float32": "f32"}


class Case(TypedDict):
    """One fixture case: a unique name, the op's parameters, and its input arrays.

    fixture, when present, names the fixture file that holds the case
    (``tests/fixtures/<framework>.<fixture>.npz``; default ``<framework>.npz``).
    """

    name: str
    params: dict[str, Any]
    inputs: dict[str, np.ndarray]
    fixture: NotRequired[str]


def case_rng(name: str) -> np.random.Generator:
    """A generator seeded from the case name (crc32), so a case's data never depends on order."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def fmt(x: float) -> str:
    """Short, exact-enough text of a float for case names (0.0625 -> '0.0625', 1.0 -> '1')."""
    return f"{x:g}"


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


def torchvision_rois(boxes: np.ndarray, n_images: int, dtype: str) -> np.ndarray:
    """(K, 5) [batch, x1, y1, x2, y2] rows, the layout of torchvision.ops.roi_align/roi_pool."""
    return np.concatenate([batch_of(len(boxes), n_images)[:, None], boxes], axis=1).astype(dtype)


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


# Feature map (N, H, W) of the position-sensitive cases: at most 8 x 8, so adaptive grids compile one window tier.
PS_MAP = (2, 7, 8)
# (op, sampling_ratio, spatial_scale, output_size, output channels, dtype); sampling_ratio None for ps_roi_pool.
PS_TABLE: list[tuple[str, int | None, float, tuple[int, int], int, str]] = [
    ("ps_roi_align", -1, 1.0, (2, 2), 2, "float64"),
    ("ps_roi_align", 2, 0.5, (3, 3), 1, "float64"),
    ("ps_roi_align", -1, 0.25, (2, 3), 1, "float32"),
    ("ps_roi_align", 2, 1 / 16, (2, 3), 2, "float32"),
    ("ps_roi_pool", None, 0.5, (3, 3), 1, "float64"),
    ("ps_roi_pool", None, 1.0, (2, 3), 2, "float32"),
]


def ps_edge_boxes(height: int, width: int, out_h: int, out_w: int) -> np.ndarray:
    """The edge boxes plus ps_roi_pool's own edges: corners exactly on .5 (rounding ties, -0.5 too),
    the whole map and the last row and column (which torchvision's forward pass never reads)."""
    extra = [[1.5, -0.5, 4.5, 2.5], [0.0, 0.0, width, height], [width - 2.0, height - 2.0, width, height]]
    return np.concatenate([edge_boxes_on_map(height, width, out_h, out_w), np.asarray(extra)])


def ps_roi_pool_backward_differs(boxes: np.ndarray, scale: float) -> np.ndarray:
    """(K,) bool: boxes for which torchvision's ps_roi_pool backward may differ from the derivative of its forward.

    The backward clips bins to [0, H] x [0, W] where the forward clips to [0, H - 1] x
    [0, W - 1], and rounds corners in float32: so any box with a bin reaching the last row
    or column, or a scaled corner within 1e-6 of a .5, is flagged (erring on that side).
    """
    _, height, width = PS_MAP
    scaled = boxes * scale
    tie = np.any(np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) < 1e-6, axis=1)
    corner = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)  # round half away from zero
    reaches = np.zeros(len(boxes), bool)
    for lo, hi, length in ((0, 2, width), (1, 3, height)):
        end = corner[:, lo] + np.maximum(corner[:, hi] - corner[:, lo], 1.0)  # the last bin's end, unclipped
        reaches |= end > length - 1
    return tie | reaches


def ps_roi_cases() -> list[Case]:
    """torchvision.ops.ps_roi_align / ps_roi_pool cases from PS_TABLE, each with every edge-case box.

    ps_roi_pool's cotangent is zero on the boxes of :func:`ps_roi_pool_backward_differs`
    (listed in params["cotangent_zero_boxes"]), so that its grad_input compares
    torchvision's backward with the derivative of the forward where the two agree.
    """
    n, height, width = PS_MAP
    cases = []
    for op, sr, scale, (ph, pw), c_out, dtype in PS_TABLE:
        ratio = "" if sr is None else f".sr{sr}"
        name = f"{op}{ratio}.scale{fmt(scale)}.out{ph}x{pw}.cout{c_out}.{DTYPE_TAG[dtype]}"
        rng = case_rng(name)
        boxes = np.concatenate([ps_edge_boxes(height, width, ph, pw), random_boxes_on_map(rng, 2, height, width)])
        boxes = boxes / scale
        params: dict[str, Any] = {"op": op, "dtype": dtype, "output_size": [ph, pw], "spatial_scale": scale}
        cotangent = features(rng, (len(boxes), c_out, ph, pw), dtype)
        if sr is None:
            differs = ps_roi_pool_backward_differs(boxes, scale)
            cotangent[differs] = 0
            params["cotangent_zero_boxes"] = np.flatnonzero(differs).tolist()
        else:
            params["sampling_ratio"] = sr
        inputs = {
            "input": features(rng, (n, c_out * ph * pw, height, width), dtype),
            "rois": torchvision_rois(boxes, n, dtype),
            "cotangent": cotangent,
        }
        cases.append({"name": name, "params": params, "inputs": inputs, "fixture": "ps_roi"})
    return cases


def torchvision_cases() -> list[Case]:
    """All torchvision cases: roi_align, roi_pool, MultiScaleRoIAlign, ps_roi_align and ps_roi_pool."""
    return roi_align_cases() + roi_pool_cases() + [multi_scale_case(s) for s in MULTI_SCALE_SPECS] + ps_roi_cases()


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


# The integer image dtypes tf.image.crop_and_resize accepts (its float32 result reads each pixel as a float).
TF_INT_DTYPES = ("uint8", "uint16", "int8", "int16", "int32", "int64")
TF_INT_IMAGE_SHAPE = (2, 6, 7, 3)


def int_image(rng: np.random.Generator, dtype: str) -> np.ndarray:
    """(N, H, W, C) over the dtype's whole range, with its extremes pinned; int32 / int64 images also
    hold 2**24 + 1 and -(2**24 + 3), which float32 cannot hold (they round)."""
    info = np.iinfo(dtype)
    image = rng.integers(info.min, info.max, TF_INT_IMAGE_SHAPE, dtype=dtype, endpoint=True)
    image[0, 0, 0, 0], image[0, 0, 1, 0], image[1, 5, 6, 2], image[1, 5, 5, 2] = info.min, info.max, info.max, info.min
    if dtype in ("int32", "int64"):
        image[0, 2, 3, 1], image[1, 3, 3, 0] = 2**24 + 1, -(2**24 + 3)
    return image


def crop_and_resize_int_cases() -> list[Case]:
    """Integer images of every dtype TF accepts x (bilinear crop 3x5, nearest crop 1x4 with extrapolation 0.75)."""
    cases = []
    for dtype in TF_INT_DTYPES:
        for method, (ch, cw), extrapolation in (("bilinear", (3, 5), 0.0), ("nearest", (1, 4), 0.75)):
            name = f"crop_and_resize.{dtype}.{method}.crop{ch}x{cw}.extrap{fmt(extrapolation)}"
            rng = case_rng(name)
            lo = rng.uniform(0.0, 0.6, (2, 2))
            boxes = np.concatenate([TF_EDGE_BOXES, np.concatenate([lo, lo + rng.uniform(0.1, 0.4, (2, 2))], axis=1)])
            params = {
                "op": "crop_and_resize",
                "dtype": "float32",
                "image_dtype": dtype,
                "crop_size": [ch, cw],
                "method": method,
                "extrapolation_value": extrapolation,
            }
            inputs = {
                "image": int_image(rng, dtype),
                "boxes": boxes.astype(np.float32),
                "box_indices": batch_of(len(boxes), TF_INT_IMAGE_SHAPE[0]).astype(np.int32),
                "cotangent": features(rng, (len(boxes), ch, cw, TF_INT_IMAGE_SHAPE[3]), "float32"),
            }
            cases.append({"name": name, "params": params, "inputs": inputs, "fixture": "int_images"})
    return cases


def tensorflow_cases() -> list[Case]:
    """All tensorflow cases (crop_and_resize on float and on integer images)."""
    return crop_and_resize_cases() + crop_and_resize_int_cases()


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
