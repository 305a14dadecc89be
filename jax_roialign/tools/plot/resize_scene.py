"""The arithmetic of the resize figure: where each convention's output samples fall on the input grid.

An (n x n) input holding ``10 * row + col`` resized to (m x m), four panels: half-pixel
(OpenCV, PyTorch ``align_corners=False``, TF 2, ONNX ``half_pixel``, jax.image),
align-corners (PyTorch / TF 1 ``align_corners=True``, Chainer, ONNX ``align_corners``),
asymmetric (TF 1's default, ONNX ``asymmetric`` and ``Upsample``) and nearest neighbour
(PyTorch's ``floor`` against half-pixel rounding).  Nothing is re-derived here: sample
coordinates come from ``jax_roialign.core.resize`` (``onnx_coordinates``, the nearest
tables ``torch_axis`` / ``onnx_axis``) and every panel's first output row from
``jax_roialign.resize``, so the picture is true by construction.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

import jax_roialign as jr
from jax_roialign.core import resize as tables

MAX_SIZE = 16  # beyond this many pixels per axis the panels turn into solid ink


class ResizePanel(NamedTuple):
    """One convention: its key, title, the calls that use it, and its samples along each axis.

    coords (m,) float: the source coordinate of every output along an axis (the same for
    rows and columns); picked (m,) int or None: the input index nearest neighbour reads;
    first_row (m,): out[0, :] computed by jax_roialign.resize (nearest: the orange convention);
    other_coords / other_picked: a second convention drawn in the same panel (nearest), or None.
    """

    key: str
    title: str
    calls: tuple[str, ...]
    coords: np.ndarray
    picked: np.ndarray | None
    first_row: np.ndarray
    other_coords: np.ndarray | None = None
    other_picked: np.ndarray | None = None


def check_sizes(n: int, m: int) -> tuple[int, int]:
    """(n, m) as ints in [1, MAX_SIZE] (n >= 2: one input pixel has nothing to show), or a ValueError."""
    for name, v in (("input size", n), ("output size", m)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_SIZE:
            raise ValueError(f"{name} must be an int in [1, {MAX_SIZE}], got {v!r}")
    if n < 2:
        raise ValueError(f"input size must be >= 2, got {n!r}")
    return n, m


def input_map(n: int) -> np.ndarray:
    """The (n, n) float32 map 10 * row + col."""
    return (10 * np.arange(n)[:, None] + np.arange(n)[None, :]).astype(np.float32)


def resize_panels(n: int = 2, m: int = 4) -> tuple[ResizePanel, ...]:
    """The four panels for an (n x n) map resized to (m x m)."""
    n, m = check_sizes(n, m)
    image = input_map(n)[None, :, :, None]
    scale = float(np.float32(m) / np.float32(n))

    def first(**kwargs) -> np.ndarray:
        return np.asarray(jr.resize(image, m, **kwargs), np.float64)[0, 0, :, 0]

    def coordinates(mode: str) -> np.ndarray:
        return tables.onnx_coordinates(mode, n, m, scale).astype(np.float64)

    torch_nearest = tables.torch_axis(n, m, "nearest").start
    half_nearest = tables.onnx_axis(n, m, scale, "nearest").start
    return (
        ResizePanel(
            "half_pixel",
            "half-pixel centres",
            (
                "jr.resize(x, m)  # default",
                "OpenCV INTER_LINEAR, TF 2 resize",
                "torch interpolate(align_corners=False)",
                "ONNX half_pixel, jax.image.resize",
            ),  # fmt: skip
            coordinates("half_pixel"),
            None,
            first(),
        ),
        ResizePanel(
            "align_corners",
            "align corners",
            (
                "jr.resize(..., coordinate_mode='align_corners')",
                "torch / TF 1 align_corners=True",
                "Chainer resize_images (default)",
                "ONNX align_corners",
            ),  # fmt: skip
            coordinates("align_corners"),
            None,
            first(coordinate_mode="align_corners"),
        ),
        ResizePanel(
            "asymmetric",
            "asymmetric (o * in / out)",
            (
                "jr.resize(..., coordinate_mode='asymmetric')",
                "TF 1 resize_bilinear (default), TF Lite",
                "ONNX asymmetric, ONNX Upsample",
                "",
            ),  # fmt: skip
            coordinates("asymmetric"),
            None,
            first(coordinate_mode="asymmetric"),
        ),
        ResizePanel(
            "nearest",
            "nearest: floor vs half-pixel rounding",
            (
                "orange: torch 'nearest', TF 1, OpenCV INTER_NEAREST",
                "  floor(o * in / out)",
                "blue: jr.resize(method='nearest'), jax.image,",
                "  torch 'nearest-exact', TF 2",
            ),  # fmt: skip
            coordinates("asymmetric"),
            torch_nearest,
            first(method="nearest", coordinate_mode="asymmetric", nearest_mode="floor"),
            coordinates("half_pixel"),
            half_nearest,
        ),
    )
