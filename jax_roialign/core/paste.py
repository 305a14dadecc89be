"""Per-axis weights of Mask R-CNN mask pasting (``docs/conventions.md`` section 9).

Pasting a mask into its box is separable: image pixel (y, x) of mask k is
``sum_{a, b} Wy[k, y, a] * mask[k, a, b] * Wx[k, x, b]`` with one (image length, mask
length) weight matrix per axis and mask, zero outside the pixels the framework writes.
The boxes are data, so these are traced jax.numpy functions (the resize tables of
``core.resize`` are static NumPy); every shape is static.

- torchvision (``roi_heads.paste_masks_in_image``): the mask is padded by one zero pixel,
  its box scaled about the centre by (M + 2) / M and truncated to integers, the padded
  mask resized to the box's pixel size by bilinear ``interpolate`` (half-pixel, source
  clamped at 0) and written into the pixels of the box inside the image;
- Detectron2 (``layers.mask_ops.paste_masks_in_image``, CPU): every image pixel centre
  is mapped into the mask, ``u = ((x + 0.5 - x0) / (x1 - x0) * 2 - 1 + 1) * M / 2 - 0.5``
  (grid_sample, align_corners=False), and read bilinearly with zero padding, inside the
  window ``[floor(x0) - 1, ceil(x1) + 1)`` that Detectron2 computes per mask.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def rounded_product(a: jax.Array, b: jax.Array) -> jax.Array:
    """a * b rounded on its own, never fused into a following add as an FMA by XLA's CPU backend.

    The product is computed inside a ``lax.map`` body, so it is materialized before any
    consumer sees it; used where a truncation follows and one ulp moves a pixel.
    """
    a, b = jnp.broadcast_arrays(a, b)
    return jax.lax.map(lambda pair: pair[0] * pair[1], (a[None], b[None]))[0]


def torchvision_boxes(boxes: jax.Array, mask_h: int, mask_w: int, padding: int = 1) -> jax.Array:
    """(K, 4) int32 pixel boxes [x0, y0, x1, y1] of torchvision's expand_boxes + ``.to(int64)``.

    The box is scaled about its centre by ``(M + 2 padding) / M`` (M the mask's width, for
    both axes, as torchvision) in the boxes' dtype, then truncated toward zero.
    """
    scale = jnp.asarray((mask_w + 2 * padding) / mask_w, boxes.dtype)
    half = jnp.asarray(0.5, boxes.dtype)
    x0, y0, x1, y1 = (boxes[:, i] for i in range(4))
    w_half = rounded_product((x1 - x0) * half, scale)
    h_half = rounded_product((y1 - y0) * half, scale)
    x_c, y_c = (x1 + x0) * half, (y1 + y0) * half
    expanded = jnp.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half], axis=1)
    return jnp.trunc(expanded).astype(jnp.int32)


def _two_taps(lo: jax.Array, w_lo: jax.Array, hi: jax.Array, w_hi: jax.Array, length: int) -> jax.Array:
    """(..., length) weights: w_lo at column lo plus w_hi at column hi (columns outside get nothing)."""
    columns = jnp.arange(length)
    return jnp.where(columns == lo[..., None], w_lo[..., None], 0) + jnp.where(
        columns == hi[..., None], w_hi[..., None], 0
    )


def torchvision_axis(lo: jax.Array, hi: jax.Array, padded: int, length: int, limit: jax.Array) -> jax.Array:
    """(K, length, padded) weights of one axis: the padded mask resized into pixels lo..hi.

    lo, hi (K,) int32 box edges (inclusive); limit (K,) the size of each mask's image along
    this axis.  Pixel p of the box (p - lo = i) reads ``interpolate(size=hi - lo + 1)``'s
    output i: source ``max(padded / size * (i + 0.5) - 0.5, 0)`` in float32, neighbours
    floor and floor + 1 (clamped).  Pixels outside [max(lo, 0), min(hi + 1, limit)) get 0.
    """
    size = jnp.maximum(hi - lo + 1, 1)
    scale = jnp.float32(padded) / size.astype(jnp.float32)
    p = jnp.arange(length, dtype=jnp.int32)[None, :]
    i = (p - lo[:, None]).astype(jnp.float32)
    src = jnp.maximum(scale[:, None] * (i + 0.5) - 0.5, 0.0)
    first = jnp.minimum(jnp.floor(src), padded - 1)
    frac = jnp.clip(src - first, 0.0, 1.0)
    second = first + (first < padded - 1)
    valid = (p >= jnp.maximum(lo, 0)[:, None]) & (p < jnp.minimum(hi + 1, limit)[:, None])
    weights = _two_taps(first.astype(jnp.int32), 1.0 - frac, second.astype(jnp.int32), frac, padded)
    return jnp.where(valid[..., None], weights, 0.0)


def detectron2_axis(lo: jax.Array, hi: jax.Array, mask_len: int, length: int, limit: jax.Array) -> jax.Array:
    """(K, length, mask_len) weights of one axis: Detectron2's grid_sample of pixel centres.

    lo, hi (K,) float box edges; limit (K,) the image size along this axis.  Pixel p maps
    to ``u = ((p + 0.5 - lo) / (hi - lo) * 2 - 1 + 1) * M / 2 - 0.5``, read with weights
    ``floor(u) + 1 - u`` and ``u - floor(u)`` on columns floor(u) and floor(u) + 1 (zero
    outside the mask).  Pixels outside Detectron2's window [floor(lo) - 1, ceil(hi) + 1)
    or the image get 0.  A box of zero extent (u not finite) pastes nothing.
    """
    dtype = lo.dtype
    p = jnp.arange(length, dtype=dtype)[None, :]
    g = (p + 0.5 - lo[:, None]) / (hi - lo)[:, None] * 2.0 - 1.0
    u = ((g + 1.0) * mask_len - 1.0) / 2.0
    first = jnp.floor(jax.lax.stop_gradient(u))
    weights = _two_taps(first.astype(jnp.int32), first + 1.0 - u, first.astype(jnp.int32) + 1, u - first, mask_len)
    start = jnp.maximum(jnp.floor(lo) - 1.0, 0.0)
    stop = jnp.minimum(jnp.ceil(hi) + 1.0, limit.astype(dtype))
    valid = (p >= start[:, None]) & (p < stop[:, None]) & jnp.isfinite(u)
    return jnp.where(valid[..., None], weights, 0.0)
