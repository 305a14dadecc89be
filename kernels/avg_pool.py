"""avg RoIAlign as Pallas kernels: a windowed separable forward pass and an owner-computes backward pass.

avg is separable, ``out[k] = Wy[k] @ X[b_k] @ Wx[k]^T`` per channel, with the per-axis
weights of ``geometry.avg_geometry``.  Both kernels accumulate in the dtype of the
(already converted) features: float32, or float64 for float64 features.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from .config import BlockSizes, round_up
from .geometry import AvgGeometry, ImageRanges
from .target import Target

FORWARD_NAME = "roi_align_avg_forward"
BACKWARD_NAME = "roi_align_avg_features_backward"


def _forward_kernel(
    image_ref,
    row_start_ref,
    row_count_ref,
    tile_start_ref,
    tile_count_ref,
    wy_by_row_ref,
    wx_tiles_ref,
    x_ref,
    out_ref,
    *,
    target: Target,
):
    """One (box, channel block): out = sum over the box's rows r of wy[:, r] (x) (Wx @ X[r]).

    Rows stream one at a time over the box's exact row span and columns a tile of TW
    at a time over its column-tile span, so a box of any size is exact.
    """
    k = pl.program_id(0)
    _, out_rows, out_cols, block_c = out_ref.shape  # the output size padded to powers of two
    tile_cols = wx_tiles_ref.shape[-1]
    channels = pl.ds(pl.multiple_of(pl.program_id(1) * block_c, block_c), block_c)
    image, row_start, tile_start = image_ref[k], row_start_ref[k], tile_start_ref[k]
    dtype = out_ref.dtype

    def row_step(i, acc):
        row = row_start + i

        def tile_step(t, row_acc):
            tile = tile_start + t
            cols = pl.ds(pl.multiple_of(tile * tile_cols, tile_cols), tile_cols)
            x = target.read(x_ref, image, row, cols, channels)  # (TW, C_blk)
            wx = wx_tiles_ref[0, tile]  # (Qp, TW)
            return row_acc + jnp.sum(wx[:, :, None] * x[None, :, :], axis=1)

        row_acc = jax.lax.fori_loop(0, tile_count_ref[k], tile_step, jnp.zeros((out_cols, block_c), dtype))
        return acc + wy_by_row_ref[0, row][:, None, None] * row_acc[None]

    out_ref[0] = jax.lax.fori_loop(0, row_count_ref[k], row_step, jnp.zeros((out_rows, out_cols, block_c), dtype))


def forward(
    x: jax.Array,
    image: jax.Array,
    geometry: AvgGeometry,
    output_size: tuple[int, int],
    block_sizes: BlockSizes,
    target: Target,
) -> jax.Array:
    """(K, out_h, out_w, C) avg RoIAlign of features x (N, H, W, C) in x's dtype (the accumulation dtype).

    ``image`` (K,) int32 holds the batch indices.
    """
    _, _, w, c = x.shape
    k, map_rows, out_rows = geometry.wy_by_row.shape
    n_tiles, out_cols, tile_cols = geometry.wx_tiles.shape[1:]
    block_c = block_sizes.channel_block(c)
    pad_c = round_up(c, block_c)
    x = jnp.pad(x, ((0, 0), (0, 0), (0, n_tiles * tile_cols - w), (0, pad_c - c)))
    call = target.pallas_call(
        functools.partial(_forward_kernel, target=target),
        name=FORWARD_NAME,
        grid=(k, pad_c // block_c),
        in_specs=[target.scalars()] * 5
        + [
            pl.BlockSpec((1, map_rows, out_rows), lambda i, j: (i, 0, 0)),
            pl.BlockSpec((1, n_tiles, out_cols, tile_cols), lambda i, j: (i, 0, 0, 0)),
            target.in_memory(),
        ],
        out_specs=pl.BlockSpec((1, out_rows, out_cols, block_c), lambda i, j: (i, 0, 0, j)),
        out_shape=jax.ShapeDtypeStruct((k, out_rows, out_cols, pad_c), x.dtype),
    )
    out = call(
        image,
        geometry.row_start,
        geometry.row_count,
        geometry.tile_start,
        geometry.tile_count,
        geometry.wy_by_row,
        geometry.wx_tiles,
        x,
    )
    return out[:, : output_size[0], : output_size[1], :c]


def _backward_kernel(
    order_ref,
    start_ref,
    row_start_ref,
    row_count_ref,
    tile_start_ref,
    tile_count_ref,
    wy_ref,
    wx_tiles_ref,
    g_ref,
    dx_ref,
    *,
    target: Target,
    out_h: int,
):
    """One (image, row tile, column tile, channel block) of the feature gradient.

    The program owns its tile and adds every box of its image that reads the tile,
    in ascending box order, each as ``sum_p wy[p, rows] (x) (Wx[:, cols]^T @ G[p])``
    (p ascending): no other program writes the tile and the order is fixed, so the
    result is bitwise reproducible.
    """
    n, row_tile, col_tile = pl.program_id(0), pl.program_id(1), pl.program_id(2)
    _, tile_rows, tile_cols, block_c = dx_ref.shape
    channels = pl.ds(pl.multiple_of(pl.program_id(3) * block_c, block_c), block_c)
    row0 = pl.multiple_of(row_tile * tile_rows, tile_rows)

    def box_step(i, acc):
        k = order_ref[i]
        row_start, tile_start = row_start_ref[k], tile_start_ref[k]
        reads_tile = (
            (row_start < row0 + tile_rows)
            & (row_start + row_count_ref[k] > row0)
            & (tile_start <= col_tile)
            & (col_tile < tile_start + tile_count_ref[k])
        )

        def add_box(acc):
            wx = target.read(wx_tiles_ref, k, col_tile)  # (Qp, TW)

            def out_row_step(p, acc):
                g = target.read(g_ref, k, p, slice(None), channels)  # (Qp, C_blk)
                cols = jnp.sum(wx[:, :, None] * g[:, None, :], axis=0)  # (TW, C_blk)
                wy = target.read(wy_ref, k, p, pl.ds(row0, tile_rows))  # (TR,)
                return acc + wy[:, None, None] * cols[None]

            return jax.lax.fori_loop(0, out_h, out_row_step, acc)

        return jax.lax.cond(reads_tile, add_box, lambda acc: acc, acc)

    zeros = jnp.zeros((tile_rows, tile_cols, block_c), dx_ref.dtype)
    dx_ref[0] = jax.lax.fori_loop(start_ref[n], start_ref[n + 1], box_step, zeros)


def backward(
    g: jax.Array,
    ranges: ImageRanges,
    geometry: AvgGeometry,
    features_shape: tuple[int, int, int, int],
    block_sizes: BlockSizes,
    target: Target,
) -> jax.Array:
    """(N, H, W, C) gradient of the features for the output cotangent g (K, out_h, out_w, C).

    Accumulates in g's dtype; deterministic (see ``_backward_kernel``).
    """
    n, h, w, c = features_shape
    _, out_h, out_w, _ = g.shape
    out_rows, map_rows = geometry.wy.shape[1:]
    n_tiles, out_cols, tile_cols = geometry.wx_tiles.shape[1:]
    tile_rows = block_sizes.tile_rows
    block_c = block_sizes.channel_block(c)
    pad_c = round_up(c, block_c)
    g = jnp.pad(g, ((0, 0), (0, out_rows - out_h), (0, out_cols - out_w), (0, pad_c - c)))
    call = target.pallas_call(
        functools.partial(_backward_kernel, target=target, out_h=out_h),
        name=BACKWARD_NAME,
        grid=(n, map_rows // tile_rows, n_tiles, pad_c // block_c),
        in_specs=[target.scalars()] * 6 + [target.in_memory()] * 3,
        out_specs=pl.BlockSpec((1, tile_rows, tile_cols, block_c), lambda i, r, t, j: (i, r, t, j)),
        out_shape=jax.ShapeDtypeStruct((n, map_rows, n_tiles * tile_cols, pad_c), g.dtype),
    )
    dx = call(
        ranges.order,
        ranges.start,
        geometry.row_start,
        geometry.row_count,
        geometry.tile_start,
        geometry.tile_count,
        geometry.wy,
        geometry.wx_tiles,
        g,
    )
    return dx[:, :h, :w, :c]
