"""Mask R-CNN mask pasting in plain jax.numpy (``docs/conventions.md`` section 9).

Every mask is pasted onto the whole (H, W) canvas with static shapes: its two per-axis
weight matrices (``core.paste``) are zero outside the pixels the framework writes, and
``Wy @ mask @ Wx^T`` gives the pasted image.  The weights are small ((H + W) x M per
mask); the canvases are the output.  Thresholded masks are computed in chunks (a
sequential ``lax.map``), so the float canvases before the threshold take about
``CHUNK_BYTES`` whatever the number of masks; soft masks are the output itself.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jax_roialign.core import paste
from jax_roialign.core.bins import compute_dtype
from jax_roialign.core.guards import CHUNK_BYTES

CONVENTIONS: tuple[str, ...] = ("torchvision", "detectron2")


def _map_chunks(fn: Callable[..., jax.Array], arrays: tuple[jax.Array, ...], chunk: int) -> jax.Array:
    """fn over the leading axis of arrays, in a sequential ``lax.map`` over chunks of at most `chunk` items."""
    k = arrays[0].shape[0]
    if k <= chunk:
        return fn(*arrays)
    n_chunks = -(-k // chunk)
    chunk = -(-k // n_chunks)  # as even as possible: less padding
    pad = n_chunks * chunk - k
    padded = tuple(
        jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)).reshape((n_chunks, chunk) + a.shape[1:]) for a in arrays
    )
    out = jax.lax.map(lambda args: fn(*args), padded)
    return out.reshape((n_chunks * chunk,) + out.shape[2:])[:k]


def paste_masks(
    masks: jax.Array,
    boxes: jax.Array,
    limits: jax.Array,
    canvas: tuple[int, int],
    convention: str,
    threshold: float | None,
    padding: int = 1,
) -> jax.Array:
    """(K, Mh, Mw) masks pasted at (K, 4) [x1, y1, x2, y2] boxes onto (K, H, W) canvases.

    limits (K, 2) int32: the (height, width) of each mask's image (pixels beyond stay 0);
    padding: torchvision's zero border around each mask (its box grows to match).
    Soft values are computed in float32 (float64 for float64 masks); threshold None
    returns them, ``>= 0`` gives ``soft >= threshold`` (bool), ``< 0`` gives
    ``uint8(soft * 255)`` truncated, as Detectron2.
    """
    dtype = compute_dtype(masks.dtype) if jnp.issubdtype(masks.dtype, jnp.floating) else jnp.float32
    masks = masks.astype(dtype)
    height, width = canvas
    k, mask_h, mask_w = masks.shape
    if convention == "torchvision":
        masks = jnp.pad(masks, ((0, 0), (padding, padding), (padding, padding)))
        boxes = paste.torchvision_boxes(boxes, mask_h, mask_w, padding)
    else:
        boxes = boxes.astype(jnp.promote_types(boxes.dtype, jnp.float32))

    def pasted(masks: jax.Array, boxes: jax.Array, limits: jax.Array) -> jax.Array:
        m_h, m_w = masks.shape[1:]
        if convention == "torchvision":
            wy = paste.torchvision_axis(boxes[:, 1], boxes[:, 3], m_h, height, limits[:, 0])
            wx = paste.torchvision_axis(boxes[:, 0], boxes[:, 2], m_w, width, limits[:, 1])
        else:
            wy = paste.detectron2_axis(boxes[:, 1], boxes[:, 3], m_h, height, limits[:, 0])
            wx = paste.detectron2_axis(boxes[:, 0], boxes[:, 2], m_w, width, limits[:, 1])
        rows = jnp.einsum("kya,kab->kyb", wy.astype(dtype), masks, precision=jax.lax.Precision.HIGHEST)
        soft = jnp.einsum("kyb,kxb->kyx", rows, wx.astype(dtype), precision=jax.lax.Precision.HIGHEST)
        if threshold is None:
            return soft
        if threshold >= 0:
            return soft >= jnp.asarray(threshold, dtype)
        return (soft.astype(jnp.float32) * 255.0).astype(jnp.uint8)

    if threshold is None:
        # The soft canvases are the output: the only large array, whatever the chunking.
        return pasted(masks, boxes, limits)
    # Thresholded: chunks bound the float canvases that precede the (smaller) bool / uint8 output.
    per_mask = height * width * jnp.dtype(dtype).itemsize
    return _map_chunks(pasted, (masks, boxes, limits), max(1, CHUNK_BYTES // per_mask))
