"""``python -m jax_roialign demo --resize``: one small resize under every framework's convention.

Two tables, every number computed live by ``jax_roialign.compat`` (and jax.image.resize):

- the 2x2 map ``[[64, 32], [64, 32]]`` upsampled to 4x4 (bilinear and bicubic; every output
  row is the same, so one is shown): half-pixel, align-corners and asymmetric conventions
  give three different rows;
- the row ``[10, 20, 30]`` upsampled to 5 pixels with nearest neighbour, as an FPN top-down
  path does with ``F.interpolate(size=...)`` when a level's size is odd: the conventions
  pick different source pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

import jax_roialign as jr
from jax_roialign.compat import chainer, onnx, opencv, tensorflow, torch

MAP = np.array([[64.0, 32.0], [64.0, 32.0]], np.float32)
NCHW, NHWC = MAP[None, None], MAP[None, :, :, None]
ROW = np.array([[10.0, 20.0, 30.0]], np.float32)
ROW_NCHW, ROW_NHWC = ROW[None, None], ROW[None, :, :, None]


class Row(NamedTuple):
    """One framework call: its name, its flags and the live computation of the output row."""

    name: str
    flags: str
    run: Callable[[], np.ndarray]


def _nchw(run: Callable[[], jax.Array]) -> Callable[[], np.ndarray]:
    return lambda: np.asarray(run(), np.float64)[0, 0, 0]


def _nhwc(run: Callable[[], jax.Array]) -> Callable[[], np.ndarray]:
    return lambda: np.asarray(run(), np.float64)[0, 0, :, 0]


def _onnx(mode: str, ctm: str, x: np.ndarray, size: int, **attrs) -> Callable[[], np.ndarray]:
    sizes = [1, 1, x.shape[2], size]
    return _nchw(lambda: onnx.resize(x, sizes=sizes, mode=mode, coordinate_transformation_mode=ctm, **attrs))


BILINEAR: tuple[Row, ...] = (
    Row("jax_roialign.resize", "default: half_pixel", _nhwc(lambda: jr.resize(NHWC, 4))),
    Row("OpenCV cv2.resize", "INTER_LINEAR", lambda: np.asarray(opencv.resize(MAP, (4, 4)), np.float64)[0]),
    Row(
        "PyTorch F.interpolate",
        "bilinear, align_corners=False",
        _nchw(lambda: torch.interpolate(NCHW, 4, mode="bilinear")),
    ),
    Row("TF 2 tf.image.resize", "bilinear", _nhwc(lambda: tensorflow.resize(NHWC, (4, 4)))),
    Row("ONNX Resize", "linear, half_pixel", _onnx("linear", "half_pixel", NCHW, 4)),
    Row("jax.image.resize", "linear", _nhwc(lambda: jax.image.resize(NHWC, (1, 4, 4, 1), "linear"))),
    Row("Chainer resize_images", "default: align_corners=True", _nchw(lambda: chainer.resize_images(NCHW, (4, 4)))),
    Row("TF 1 resize_bilinear", "align_corners=True", _nhwc(lambda: tensorflow.resize_bilinear(NHWC, (4, 4), True))),
    Row(
        "PyTorch F.interpolate",
        "bilinear, align_corners=True",
        _nchw(lambda: torch.interpolate(NCHW, 4, mode="bilinear", align_corners=True)),
    ),
    Row("ONNX Resize", "linear, align_corners", _onnx("linear", "align_corners", NCHW, 4)),
    Row("TF 1 resize_bilinear", "default (TF Lite too)", _nhwc(lambda: tensorflow.resize_bilinear(NHWC, (4, 4)))),
    Row("ONNX Resize", "linear, asymmetric", _onnx("linear", "asymmetric", NCHW, 4)),
    Row("ONNX Upsample-9", "linear", _nchw(lambda: onnx.upsample(NCHW, [1, 1, 2, 2], mode="linear"))),
)
BICUBIC: tuple[Row, ...] = (
    Row("jax_roialign.resize", "bicubic: a = -0.75", _nhwc(lambda: jr.resize(NHWC, 4, method="bicubic"))),
    Row(
        "PyTorch F.interpolate",
        "bicubic: a = -0.75",
        _nchw(lambda: torch.interpolate(NCHW, 4, mode="bicubic")),
    ),
    Row(
        "OpenCV cv2.resize",
        "INTER_CUBIC: a = -0.75",
        lambda: np.asarray(opencv.resize(MAP, (4, 4), interpolation=2), np.float64)[0],
    ),
    Row("TF 2 tf.image.resize", "bicubic: Keys a = -0.5", _nhwc(lambda: tensorflow.resize(NHWC, (4, 4), "bicubic"))),
    Row("jax.image.resize", "cubic: Keys a = -0.5", _nhwc(lambda: jax.image.resize(NHWC, (1, 4, 4, 1), "cubic"))),
    Row("TF 1 resize_bicubic", "default: asymmetric", _nhwc(lambda: tensorflow.resize_bicubic(NHWC, (4, 4)))),
)
NEAREST: tuple[Row, ...] = (
    Row("PyTorch F.interpolate", "nearest: floor(o * 3/5)", _nchw(lambda: torch.interpolate(ROW_NCHW, (1, 5)))),
    Row("TF 1 resize_nearest_neighbor", "default", _nhwc(lambda: tensorflow.resize_nearest_neighbor(ROW_NHWC, (1, 5)))),
    Row(
        "OpenCV cv2.resize",
        "INTER_NEAREST",
        lambda: np.asarray(opencv.resize(ROW, (5, 1), interpolation=0), np.float64)[0],
    ),
    Row("ONNX Resize", "asymmetric, floor", _onnx("nearest", "asymmetric", ROW_NCHW, 5, nearest_mode="floor")),
    Row(
        "PyTorch F.interpolate",
        "nearest-exact",
        _nchw(lambda: torch.interpolate(ROW_NCHW, (1, 5), mode="nearest-exact")),
    ),
    Row("jax.image.resize", "nearest", _nhwc(lambda: jax.image.resize(ROW_NHWC, (1, 1, 5, 1), "nearest"))),
    Row("TF 2 tf.image.resize", "nearest", _nhwc(lambda: tensorflow.resize(ROW_NHWC, (1, 5), "nearest"))),
    Row(
        "jax_roialign.resize",
        "nearest: half_pixel, round_prefer_floor",
        _nhwc(lambda: jr.resize(ROW_NHWC, (1, 5), method="nearest")),
    ),
    Row(
        "ONNX Resize",
        "half_pixel, round_prefer_ceil",
        _onnx("nearest", "half_pixel", ROW_NCHW, 5, nearest_mode="round_prefer_ceil"),
    ),
    Row(
        "OpenCV cv2.resize",
        "INTER_NEAREST_EXACT",
        lambda: np.asarray(opencv.resize(ROW, (5, 1), interpolation=6), np.float64)[0],
    ),
    Row(
        "TF 1 resize_nearest_neighbor",
        "align_corners=True",
        _nhwc(lambda: tensorflow.resize_nearest_neighbor(ROW_NHWC, (1, 5), align_corners=True)),
    ),
)


def _table(title: str, rows: tuple[Row, ...]) -> list[str]:
    """The rows of one method, each with a label A, B, ... shared by equal results."""
    results = [(row, np.asarray(row.run(), np.float64)) for row in rows]
    groups: list[np.ndarray] = []
    lines = [title]
    for row, values in results:
        index = next((i for i, g in enumerate(groups) if np.allclose(g, values, atol=1e-4)), None)
        if index is None:
            groups.append(values)
            index = len(groups) - 1
        numbers = " ".join(f"{v:6.2f}" for v in values)
        lines.append(f"  {chr(ord('A') + index)}  {row.name:<29} {row.flags:<42} {numbers}")
    return lines + [""]


def render() -> str:
    """Both tables, computed live (equal results share a letter)."""
    lines = ["2x2 map [[64, 32], [64, 32]] resized to 4x4 (every output row is the same; one row shown)", ""]
    lines += _table("bilinear", BILINEAR)
    lines += _table("bicubic", BICUBIC)
    lines += ["Row [10, 20, 30] resized to 5 pixels with nearest neighbour (an FPN level of odd size)", ""]
    lines += _table("nearest", NEAREST)
    return "\n".join(lines).rstrip() + "\n"
