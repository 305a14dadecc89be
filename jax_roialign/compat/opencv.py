"""cv2.resize on (H, W) and (H, W, C) arrays, with OpenCV 5's numbers (``docs/conventions.md`` 8.5)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax_roialign import canonical, ops
from jax_roialign.core import resize as tables

INTER_NEAREST = 0
INTER_LINEAR = 1
INTER_CUBIC = 2
INTER_AREA = 3
INTER_NEAREST_EXACT = 6
INTERPOLATIONS: dict[int, str] = {
    INTER_NEAREST: "nearest",
    INTER_LINEAR: "linear",
    INTER_CUBIC: "cubic",
    INTER_AREA: "area",
    INTER_NEAREST_EXACT: "nearest_exact",
}


def resize(
    src: jax.Array,
    dsize: tuple[int, int] | None,
    dst: None = None,
    fx: float = 0,
    fy: float = 0,
    interpolation: int = INTER_LINEAR,
) -> jax.Array:
    """cv2.resize(src, dsize, dst, fx, fy, interpolation) on a (H, W) or (H, W, C) array.

    dsize is (width, height); when it is None or (0, 0) the output is round(size * f)
    (half to even) and fx, fy are the coordinate scales, else dsize / size are.
    Interpolations: INTER_NEAREST (``floor(o / f)``), INTER_NEAREST_EXACT (OpenCV 5:
    ``floor(f / 2 + o f)`` accumulated in double), INTER_LINEAR (half-pixel; an exact 2x
    downscale becomes INTER_AREA, as in OpenCV), INTER_CUBIC (a = -0.75, clamped taps),
    INTER_AREA (cell averages when downscaling, area-weighted linear taps otherwise).
    float32 / float64 compute in float32 / float64 with OpenCV's float32 weights; uint8
    follows OpenCV's fixed-point paths (11-bit weights, its rounding), except that an
    OpenCV built with IPP (the default wheels) runs uint8 INTER_CUBIC through IPP, which
    differs by up to 1 here.  Returns src's dtype and rank.  dst must be None (JAX arrays
    are immutable).
    """
    if dst is not None:
        raise ValueError("dst must be None: the result is returned (JAX arrays are immutable)")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {sorted(INTERPOLATIONS)} (cv2.INTER_*), got {interpolation!r}")
    kind = INTERPOLATIONS[interpolation]
    src = jnp.asarray(src)
    if src.ndim not in (2, 3):
        raise ValueError(f"src must have shape (H, W) or (H, W, C), got shape {src.shape}")
    x = canonical.canonical_images(src.reshape(src.shape[:2] + (-1,))[None], "NHWC", name="src")
    if jnp.issubdtype(x.dtype, jnp.integer) and x.dtype != jnp.uint8 and kind not in ("nearest", "nearest_exact"):
        raise TypeError(f"integer src is resized only as uint8 (or with nearest modes), got {x.dtype}")
    if dsize is not None and len(tuple(dsize)) != 2:
        raise ValueError(f"dsize must be (width, height), got {dsize!r}")
    (out_h, out_w), inverse_x, inverse_y = tables.cv2_output_size(x.shape[1:3], dsize, fx, fy)
    if min(out_h, out_w) < 1 or not (inverse_x > 0 and inverse_y > 0):
        raise ValueError(f"the output size {(out_h, out_w)} (dsize={dsize!r}, fx={fx!r}, fy={fy!r}) must be positive")
    y = _resize(x, out_h, out_w, inverse_x, inverse_y, kind)
    return y[0].reshape((out_h, out_w) + src.shape[2:])


def _resize(x: jax.Array, out_h: int, out_w: int, inverse_x: float, inverse_y: float, kind: str) -> jax.Array:
    (n_h, n_w), channels = x.shape[1:3], x.shape[3]
    factor_x, factor_y = tables.cv2_fast_area(n_w, inverse_x), tables.cv2_fast_area(n_h, inverse_y)
    fast = bool(factor_x and factor_y)
    if kind == "linear" and fast and factor_x == factor_y == 2:
        kind = "area"
    uint8 = x.dtype == jnp.uint8
    if kind == "area" and 1.0 / inverse_x >= 1 and 1.0 / inverse_y >= 1:
        table_h = tables.cv2_area_axis(n_h, out_h, inverse_y)
        table_w = tables.cv2_area_axis(n_w, out_w, inverse_x)
        if not uint8:
            return ops.resize_canonical(x, table_h, table_w)
        if not fast:
            return ops.resize_integer_canonical(x, tables.Cv2Uint8Rule("area", table_h, table_w))
        block_h, block_w = tables.cv2_block_axis(n_h, out_h, factor_y), tables.cv2_block_axis(n_w, out_w, factor_x)
        sums = tables.Cv2Uint8Rule("block", block_h, block_w)
        if factor_x == factor_y == 2 and channels in (1, 3, 4):
            sums = tables.Cv2Uint8Rule("block2x2", sums.h, sums.w)
        return ops.resize_integer_canonical(x, sums)
    table_h = tables.cv2_axis(n_h, out_h, inverse_y, kind, False)
    table_w = tables.cv2_axis(n_w, out_w, inverse_x, kind, True)
    if uint8 and kind in ("linear", "cubic", "area"):
        rule_kind = "cubic" if kind == "cubic" else "linear"
        return ops.resize_integer_canonical(x, tables.Cv2Uint8Rule(rule_kind, table_h, table_w))
    return ops.resize_canonical(x, table_h, table_w)
