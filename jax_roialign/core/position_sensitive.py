"""Position-sensitive pooling (R-FCN): which channel each bin reads, and PS RoIPool's integer bins.

Position-sensitive RoIAlign / RoIPool pool bin (p, q) of output channel ``c`` from input
channel ``(c * out_h + p) * out_w + q`` (torchvision's order; ``docs/conventions.md``
section 6).  Rearranging the channels once, so that every (image, p, q) becomes a
"position map" of ``C / (out_h * out_w)`` channels, turns that into an ordinary pool of
one-bin boxes: box k's bin (p, q) reads position map ``(image_k * out_h + p) * out_w + q``.
Both implementations build on that rearrangement.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jax_roialign.core.sampling import divide, round_half_away_from_zero


def output_channels(channels: int, output_size: tuple[int, int]) -> int:
    """C / (out_h * out_w); a ValueError naming features when C is not a multiple of out_h * out_w."""
    out_h, out_w = output_size
    if channels % (out_h * out_w):
        raise ValueError(
            f"features must have a multiple of out_h * out_w = {out_h * out_w} channels for position-sensitive "
            f"pooling with output_size {output_size}, got {channels}"
        )
    return channels // (out_h * out_w)


def channel_mapping(channels_out: int, output_size: tuple[int, int]) -> np.ndarray:
    """(channels_out, out_h, out_w) int32: the input channel read by each output channel and bin.

    ``mapping[c, p, q] = (c * out_h + p) * out_w + q``, torchvision's ``channel_mapping``.
    """
    out_h, out_w = output_size
    return np.arange(channels_out * out_h * out_w, dtype=np.int32).reshape(channels_out, out_h, out_w)


def position_maps(features: jax.Array, output_size: tuple[int, int]) -> jax.Array:
    """(N * out_h * out_w, H, W, C_out) from (N, H, W, C): map ``(n * out_h + p) * out_w + q`` holds
    the channels ``(c * out_h + p) * out_w + q`` of image n, for c = 0 .. C_out - 1."""
    n, h, w, c = features.shape
    out_h, out_w = output_size
    maps = features.reshape(n, h, w, c // (out_h * out_w), out_h, out_w)
    return jnp.transpose(maps, (0, 4, 5, 1, 2, 3)).reshape(n * out_h * out_w, h, w, -1)


def bin_maps(images: jax.Array, output_size: tuple[int, int]) -> jax.Array:
    """(K, out_h, out_w) int32: the position map that bin (p, q) of a box of image images[k] reads."""
    out_h, out_w = output_size
    p = jnp.arange(out_h, dtype=jnp.int32)[None, :, None]
    q = jnp.arange(out_w, dtype=jnp.int32)[None, None, :]
    return (images[:, None, None] * out_h + p) * out_w + q


def pool_bin_edges(
    lo: jax.Array, hi: jax.Array, spatial_scale: float, pooled: int, length: int
) -> tuple[jax.Array, jax.Array]:
    """(first, end) cells of every bin of torchvision's ps_roi_pool along one axis, each (K, pooled) int32.

    Corners are scaled and rounded half away from zero; the size is ``max(end - start, 1)``
    (no +1, unlike roi_pool); bin p covers ``[floor(p * bin) + start, ceil((p + 1) * bin) + start)``
    clipped to [0, length - 1], so the last row / column is never read (torchvision's
    forward pass).  A bin with end <= first is empty.
    """
    start = round_half_away_from_zero(lo * spatial_scale)
    end = round_half_away_from_zero(hi * spatial_scale)
    bin_size = divide(jnp.maximum(end - start, 1.0), pooled)
    p = jnp.arange(pooled, dtype=lo.dtype)
    first = jnp.floor(p * bin_size[:, None]) + start[:, None]
    last = jnp.ceil((p + 1.0) * bin_size[:, None]) + start[:, None]
    return tuple(jnp.clip(v, 0, length - 1).astype(jnp.int32) for v in (first, last))


def mean_table(first: jax.Array, end: jax.Array, length: int, chunk: int, dtype: jnp.dtype) -> tuple[jax.Array, ...]:
    """(rows, weights), each (K, pooled, T): the mean over cells [first, end) of every bin as a tap table.

    T is ``length`` rounded up to a multiple of ``chunk``; row j of bin p is ``first + j``
    (clamped to the map) with weight ``1 / (end - first)`` inside [first, end), 0 elsewhere,
    so the table's leading chunks hold every cell of the bin.  Empty bins (end <= first)
    get all-zero weights.
    """
    size = -(-length // chunk) * chunk
    rows = first[..., None] + jnp.arange(size, dtype=jnp.int32)
    inside = rows < end[..., None]
    count = jnp.maximum(end - first, 1).astype(dtype)[..., None]
    return jnp.minimum(rows, length - 1), jnp.where(inside, 1.0 / count, 0.0).astype(dtype)
