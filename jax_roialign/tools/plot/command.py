"""``python -m jax_roialign plot``: the conventions figure for a box of your choice, as a PNG;
``--resize N,M``: where each resize convention samples an N x N map resized to M x M."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from jax_roialign.conventions import check_spatial_scale, output_size_pair
from jax_roialign.tools.plot.figure import png_path, save_conventions_figure
from jax_roialign.tools.plot.resize_figure import save_resize_figure
from jax_roialign.tools.plot.resize_scene import check_sizes
from jax_roialign.tools.plot.scene import (
    DEFAULT_ANGLE,
    DEFAULT_BOX,
    DEFAULT_OUTPUT_SIZE,
    DEFAULT_SAMPLING_RATIO,
    check_box,
)


def _argument(parse):
    """An argparse type from a parser that raises ValueError / TypeError with a clear message."""

    def parsed(text: str):
        try:
            return parse(text)
        except (ValueError, TypeError) as err:
            raise argparse.ArgumentTypeError(str(err)) from err

    parsed.__name__ = parse.__name__
    return parsed


def _numbers(text: str, kind: type, name: str) -> list:
    """Comma-separated numbers of one kind, or a ValueError naming the flag."""
    try:
        return [kind(v) for v in text.split(",")]
    except ValueError as err:
        raise ValueError(f"{name} must be comma-separated {kind.__name__}s, got {text!r}") from err


def _number(text: str, kind: type, name: str) -> float | int:
    """One number of the given kind, or a ValueError naming the flag."""
    try:
        return kind(text)
    except ValueError as err:
        raise ValueError(f"{name} must be one {kind.__name__}, got {text!r}") from err


def parse_box(text: str) -> tuple[float, float, float, float]:
    """'x1,y1,x2,y2' -> the checked box."""
    return check_box(_numbers(text, float, "box"))


def parse_output_size(text: str) -> tuple[int, int]:
    """'N' or 'H,W' -> (out_h, out_w), each >= 1."""
    values = _numbers(text, int, "output-size")
    return output_size_pair(values[0] if len(values) == 1 else tuple(values), name="output-size")


def parse_spatial_scale(text: str) -> float:
    """A finite number > 0."""
    return check_spatial_scale(_number(text, float, "spatial-scale"), name="spatial-scale")


def parse_sampling_ratio(text: str) -> int:
    """An int; <= 0 is adaptive."""
    return _number(text, int, "sampling-ratio")


def parse_angle(text: str) -> float:
    """A finite number of degrees."""
    value = _number(text, float, "angle")
    if not math.isfinite(value):
        raise ValueError(f"angle must be finite, got {text!r}")
    return value


def parse_resize(text: str) -> tuple[int, int]:
    """'N,M' -> (input size, output size) of the resize figure."""
    values = _numbers(text, int, "resize")
    if len(values) != 2:
        raise ValueError(f"resize must be two ints IN,OUT, got {text!r}")
    return check_sizes(*values)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Flags of ``plot``: --output, --box, --output-size, --sampling-ratio, --spatial-scale, --angle, --resize."""
    parser.add_argument(
        "--output",
        type=_argument(png_path),
        default=Path("conventions.png"),
        metavar="PNG",
        help="where to write the figure (default: %(default)s)",
    )
    parser.add_argument(
        "--box",
        type=_argument(parse_box),
        default=DEFAULT_BOX,
        metavar="X1,Y1,X2,Y2",
        help="the box in input-image pixels (default: 1,1,3,3; negative: --box=-1,0,3,3)",
    )
    parser.add_argument(
        "--output-size",
        type=_argument(parse_output_size),
        default=(DEFAULT_OUTPUT_SIZE,) * 2,
        metavar="N|H,W",
        help=f"pooled output size (default: {DEFAULT_OUTPUT_SIZE})",
    )
    parser.add_argument(
        "--sampling-ratio",
        type=_argument(parse_sampling_ratio),
        default=DEFAULT_SAMPLING_RATIO,
        metavar="R",
        help=f"samples per bin and axis, <= 0 adaptive (default: {DEFAULT_SAMPLING_RATIO})",
    )
    parser.add_argument(
        "--resize",
        type=_argument(parse_resize),
        metavar="IN,OUT",
        help="draw the resize figure instead: an IN x IN map resized to OUT x OUT (e.g. 2,4)",
    )
    parser.add_argument(
        "--spatial-scale",
        type=_argument(parse_spatial_scale),
        default=1.0,
        metavar="S",
        help="box-to-map scale (default: 1)",
    )
    parser.add_argument(
        "--angle",
        type=_argument(parse_angle),
        default=DEFAULT_ANGLE,
        metavar="DEGREES",
        help=f"angle of the rotated panels, counter-clockwise (default: {DEFAULT_ANGLE:g})",
    )


def run(args: argparse.Namespace) -> int:
    """Write the figure to args.output; exit status 2 (message on stderr) if the inputs do not fit."""
    if args.resize is not None:
        print(f"wrote {save_resize_figure(args.output, *args.resize)}")
        return 0
    try:
        path = save_conventions_figure(
            args.output,
            box=args.box,
            output_size=args.output_size,
            sampling_ratio=args.sampling_ratio,
            spatial_scale=args.spatial_scale,
            angle=args.angle,
        )
    except ValueError as err:
        print(f"jax-roialign plot: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
