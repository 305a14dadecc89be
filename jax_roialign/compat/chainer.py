"""chainer.functions.resize_images on NCHW arrays, with Chainer's numbers (``docs/conventions.md`` 8.6)."""

from __future__ import annotations

import jax

from jax_roialign import canonical, ops
from jax_roialign.conventions import check_bool, check_choice, output_size_pair
from jax_roialign.core import resize as tables


def resize_images(
    x: jax.Array, output_shape: tuple[int, int], mode: str = "bilinear", align_corners: bool = True
) -> jax.Array:
    """chainer.functions.resize_images: x (N, C, H, W) float, output_shape (out_h, out_w).

    bilinear with align_corners=True (Chainer's default) samples ``linspace(0, in - 1,
    out)``; align_corners=False samples ``max((o + 0.5) in / out - 0.5, 0)``; each reads
    floor and min(floor + 1, in - 1).  nearest takes ``floor(o in / out)`` (align_corners
    has no effect).  Coordinates in float64, sums in x's float dtype (float32 for half
    precision); returns x's dtype.  Differentiable in x.
    """
    check_choice(mode, "mode", ("bilinear", "nearest"))
    align_corners = check_bool(align_corners, "align_corners")
    images = canonical.canonical_features(x, "NCHW", name="x")
    (n_h, n_w), (out_h, out_w) = images.shape[1:3], output_size_pair(tuple(output_shape), name="output_shape")
    table_h = tables.chainer_axis(n_h, out_h, mode, align_corners)
    table_w = tables.chainer_axis(n_w, out_w, mode, align_corners)
    return canonical.output_layout(ops.resize_canonical(images, table_h, table_w), "NCHW")
