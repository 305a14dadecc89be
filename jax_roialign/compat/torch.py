"""torch.nn.functional.interpolate on 4-D NCHW arrays, with PyTorch's numbers (``docs/conventions.md`` 8.3)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jax_roialign import canonical, ops
from jax_roialign.conventions import check_bool, check_choice, check_spatial_scale, output_size_pair
from jax_roialign.core import resize as tables

MODES: tuple[str, ...] = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")


def _pair(value, name: str, check) -> tuple:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2:
        raise ValueError(f"{name} must be a number or a pair for a 4-D input, got {value!r}")
    return tuple(check(v) for v in values)


def output_size(
    shape: tuple[int, int], size: int | tuple[int, int] | None, scale_factor: float | tuple[float, float] | None
) -> tuple[tuple[int, int], tuple[float | None, float | None]]:
    """((out_h, out_w), the scale factors given): floor(in * scale_factor) in double, as torch."""
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        return output_size_pair(size, name="size"), (None, None)
    factors = _pair(scale_factor, "scale_factor", lambda v: check_spatial_scale(v, "scale_factor"))
    out = tuple(int(math.floor(float(n) * f)) for n, f in zip(shape, factors, strict=True))
    if min(out) < 1:
        raise ValueError(f"scale_factor {scale_factor!r} gives an empty output {out} for an input of size {shape}")
    return out, factors


def interpolate(
    input: jax.Array,
    size: int | tuple[int, int] | None = None,
    scale_factor: float | tuple[float, float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> jax.Array:
    """torch.nn.functional.interpolate for (N, C, H, W) input, with torch's defaults and numbers.

    Output size: ``size``, or ``floor(in * scale_factor)``.  The coordinates use
    ``1 / scale_factor`` when a scale factor is given (unless
    recompute_scale_factor=True), else ``in / out``; ``align_corners=True`` maps the
    corner pixels onto each other.  Modes:

    - "nearest": ``floor(o * scale)`` (float32), with torch's shortcuts for out == in and
      out == 2 in; "nearest-exact": ``floor(max((o + 0.5) scale - 0.5, 0) + 0.5)``;
    - "bilinear": half-pixel source clamped at 0, neighbours floor and floor + 1
      (clamped); "bicubic": Keys a = -0.75, four clamped taps, no clamp of the source;
    - "area": adaptive average pooling, cells [floor(o in / out), ceil((o + 1) in / out));
    - antialias=True (bilinear, bicubic): PIL's filters (bicubic a = -0.5) widened by
      ``max(scale, 1)``, taps outside the image dropped, weights normalized.

    Floating input computes in float32 (bilinear / bicubic coordinates and sums in
    float64 for float64) and returns input's dtype.  uint8 input follows torch's integer
    path: nearest copies; bilinear / bicubic quantize the weights to int16 and round
    after a horizontal, then a vertical pass.  Differentiable in input.  One documented
    difference: torch 2.14's float antialias with an output width of 1 repeats the first
    row; this returns the intended filter.
    """
    check_choice(mode, "mode", MODES)
    antialias = check_bool(antialias, "antialias")
    interpolating = mode in ("bilinear", "bicubic")
    if align_corners is not None and not interpolating:
        raise ValueError(
            "align_corners option can only be set with the interpolating modes: linear | bilinear | bicubic | trilinear"
        )
    if antialias and not interpolating:
        raise ValueError(f"Anti-alias option is restricted to bilinear and bicubic modes, got mode={mode!r}")
    align = check_bool(align_corners, "align_corners") if align_corners is not None else False
    x = canonical.canonical_images(input, "NCHW", name="input")
    if jnp.issubdtype(x.dtype, jnp.integer) and (x.dtype != jnp.uint8 or mode == "area"):
        raise TypeError(
            f"torch interpolates integer input only as uint8 and not in area mode, got {x.dtype} and {mode!r}"
        )
    n_h, n_w = x.shape[1:3]
    (out_h, out_w), factors = output_size((n_h, n_w), size, scale_factor)
    if recompute_scale_factor is not None and check_bool(recompute_scale_factor, "recompute_scale_factor"):
        if size is not None:
            raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
        factors = (None, None)
    if x.dtype == jnp.uint8 and interpolating:
        fixed = [
            None if n == out else tables.torch_uint8_axis(n, out, mode, align, factor, antialias)
            for n, out, factor in ((n_h, out_h, factors[0]), (n_w, out_w, factors[1]))
        ]
        y = ops.resize_integer_canonical(x, tables.FixedPointRule(*fixed))
        return canonical.output_layout(y, "NCHW")
    double = x.dtype == jnp.float64
    table_h = tables.torch_axis(n_h, out_h, mode, align, factors[0], antialias, double)
    table_w = tables.torch_axis(n_w, out_w, mode, align, factors[1], antialias, double)
    return canonical.output_layout(ops.resize_canonical(x, table_h, table_w), "NCHW")
