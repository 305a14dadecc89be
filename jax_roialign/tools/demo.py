"""The main job: one 6x6 map, one box, every framework's convention side by side.

The map holds 10 * row + column; the box is (1, 1, 3, 3) in pixels (for TensorFlow
the same region normalized by 5, i.e. (1/5, 1/5, 3/5, 3/5) as [y1, x1, y2, x2]; for
the rotated ops the same box as centre (2, 2), size 2 x 2, turned a quarter turn), the
output 4 x 4 with one sample per bin.  Every number is computed live.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from jax_roialign.compat import detectron2, mmcv, onnx, tensorflow, torchvision

MAP = (10 * np.arange(6)[:, None] + np.arange(6)[None, :]).astype(np.float32)
NCHW = MAP[None, None]
ROWS = np.array([[0.0, 1.0, 1.0, 3.0, 3.0]], np.float32)  # [batch, x1, y1, x2, y2]
XYXY, BATCH = ROWS[:, 1:], np.array([0])
# The same box as [batch, cx, cy, w, h, angle], turned by a quarter turn (degrees; radians for mmcv).
ROTATED_DEGREES = np.array([[0.0, 2.0, 2.0, 2.0, 2.0, 90.0]], np.float32)
ROTATED_RADIANS = np.array([[0.0, 2.0, 2.0, 2.0, 2.0, math.pi / 2]], np.float32)


class Convention(NamedTuple):
    """One framework call: its name, the flags that matter, and the live computation."""

    name: str
    flags: str
    run: Callable[[], np.ndarray]


def _onnx(opset: int, mode: str, transform: str = "half_pixel") -> Callable[[], np.ndarray]:
    return lambda: onnx.roi_align(
        NCHW,
        XYXY,
        BATCH,
        mode=mode,
        output_height=4,
        output_width=4,
        sampling_ratio=1,
        coordinate_transformation_mode=transform,
        opset=opset,
    )


CONVENTIONS: tuple[Convention, ...] = (
    Convention(
        "torchvision roi_align", "aligned=False: legacy", lambda: torchvision.roi_align(NCHW, ROWS, 4, sampling_ratio=1)
    ),
    Convention(
        "torchvision aligned=True",
        "half-pixel",
        lambda: torchvision.roi_align(NCHW, ROWS, 4, sampling_ratio=1, aligned=True),
    ),
    Convention(
        "Detectron2 ROIAlignV2", "aligned=True: half-pixel", lambda: detectron2.roi_align(NCHW, ROWS, 4, 1.0, 1)
    ),
    Convention("Caffe2 RoIAlign", "legacy", lambda: detectron2.roi_align(NCHW, ROWS, 4, 1.0, 1, aligned=False)),
    Convention("mmcv RoIAlign avg", "aligned=True", lambda: mmcv.roi_align(NCHW, ROWS, 4, 1.0, 1)),
    Convention(
        "mmcv RoIAlign max", "max of interpolated", lambda: mmcv.roi_align(NCHW, ROWS, 4, 1.0, 1, pool_mode="max")
    ),
    Convention("ONNX RoiAlign-10 avg", "always legacy", _onnx(10, "avg")),
    Convention("ONNX RoiAlign-16 avg", "half_pixel", _onnx(16, "avg")),
    Convention("ONNX RoiAlign-16 avg", "output_half_pixel", _onnx(16, "avg", "output_half_pixel")),
    Convention("ONNX RoiAlign-16 max", "onnxruntime corner max", _onnx(16, "max")),
    Convention(
        "Detectron2 ROIAlignRotated",
        "+90 deg: counter-clockwise",
        lambda: detectron2.roi_align_rotated(NCHW, ROTATED_DEGREES, 4, 1.0, 1),
    ),
    Convention(
        "mmcv roi_align_rotated",
        "pi/2 rad, clockwise=True",
        lambda: mmcv.roi_align_rotated(NCHW, ROTATED_RADIANS, 4, 1.0, 1, clockwise=True),
    ),
    Convention(
        "TF crop_and_resize",
        "corner-aligned, box/5",
        lambda: tensorflow.crop_and_resize(MAP[None, :, :, None], np.array([[0.2, 0.2, 0.6, 0.6]]), BATCH, (4, 4))[
            ..., 0
        ],
    ),
)


def format_grid(values: np.ndarray) -> list[str]:
    """A 4 x 4 result as lines of fixed-width numbers."""
    return [" ".join(f"{v:6.2f}" for v in row) for row in values]


def render(per_row: int = 3) -> str:
    """The side-by-side table of every convention's 4 x 4 result."""
    results = [(c, np.asarray(c.run(), np.float64).reshape(4, 4)) for c in CONVENTIONS]
    width = len(format_grid(np.zeros((4, 4)))[0])
    lines = ["RoIAlign of box (1, 1, 3, 3) on a 6x6 map of 10*row+col, 4x4 output, 1 sample per bin", ""]
    for start in range(0, len(results), per_row):
        chunk = results[start : start + per_row]
        lines.append("   ".join(c.name[:width].ljust(width) for c, _ in chunk))
        lines.append("   ".join(c.flags[:width].ljust(width) for c, _ in chunk))
        grids = [format_grid(v) for _, v in chunk]
        lines.extend("   ".join(g[r] for g in grids) for r in range(4))
        lines.append("")
    return "\n".join(lines)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Flags of ``demo``: --per-row N, --resize."""
    parser.add_argument("--per-row", type=positive_int, default=3, metavar="N", help="conventions per row (default: 3)")
    parser.add_argument(
        "--resize", action="store_true", help="resize a 2x2 map to 4x4 (and a row of 3 to 5) under every convention"
    )


def run(args: argparse.Namespace) -> int:
    """Print the table of every convention's result (RoIAlign, or resize with --resize)."""
    if args.resize:
        from jax_roialign.tools import resize_demo

        print(resize_demo.render(), end="")
        return 0
    print(render(args.per_row))
    return 0
