"""avg RoIAlign kernels for GPU (Pallas' Triton lowering): every array in global memory, loaded in place.

Computes ``avg_pool.forward_reference`` / ``avg_pool.backward_reference``.  Triton
holds arrays of power-of-two sizes only, so the output rows and columns are padded to
powers of two (zero weights) and cut off afterwards.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from .avg_pool import BACKWARD_NAME, FORWARD_NAME
from .config import BlockSizes, next_power_of_two, round_up
from .geometry import AvgGeometry, ImageRanges, tile_span, tiles
from .target import Target


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
):
    """One (box, channel block): out = sum over the box's rows r of wy[:, r] (x) (Wx @ X[r]).

    Rows stream one at a time over the box's exact row span and columns a tile of TW
    at a time over its column-tile span, so a box of any size is exact.
    """
    k = pl.program_id(0)
    _, out_rows, out_cols, block_c = out_ref.shape
    tile_cols = wx_tiles_ref.shape[-1]
    channels = pl.ds(pl.multiple_of(pl.program_id(1) * block_c, block_c), block_c)
    image, row_start, tile_start = image_ref[k], row_start_ref[k], tile_start_ref[k]
    dtype = out_ref.dtype

    def row_step(i, acc):
        row = row_start + i

        def tile_step(t, row_acc):
            tile = tile_start + t
            cols = pl.ds(pl.multiple_of(tile * tile_cols, tile_cols), tile_cols)
            x = x_ref[image, row, cols, channels]  # (TW, C_blk)
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
    """avg_pool.forward on the Triton kernel."""
    _, h, w, c = x.shape
    k = image.shape[0]
    out_rows, out_cols = (next_power_of_two(s) for s in output_size)
    tile_cols = block_sizes.tile_cols
    wy_by_row = jnp.swapaxes(tiles(geometry.wy, out_rows, h)[:, 0], 1, 2)  # (K, H, Pp)
    wx_tiles = tiles(geometry.wx, out_cols, tile_cols)  # (K, Tx, Qp, TW)
    tile_start, tile_count = tile_span(geometry.col_start, geometry.col_count, tile_cols)
    n_tiles = wx_tiles.shape[1]
    block_c = block_sizes.channel_block(c)
    pad_c = round_up(c, block_c)
    x = jnp.pad(x, ((0, 0), (0, 0), (0, n_tiles * tile_cols - w), (0, pad_c - c)))
    call = pl.pallas_call(
        _forward_kernel,
        name=FORWARD_NAME,
        grid=(k, pad_c // block_c),
        in_specs=[pl.BlockSpec()] * 5
        + [
            pl.BlockSpec((1, h, out_rows), lambda i, j: (i, 0, 0)),
            pl.BlockSpec((1, n_tiles, out_cols, tile_cols), lambda i, j: (i, 0, 0, 0)),
            pl.BlockSpec(),
        ],
        out_specs=pl.BlockSpec((1, out_rows, out_cols, block_c), lambda i, j: (i, 0, 0, j)),
        out_shape=jax.ShapeDtypeStruct((k, out_rows, out_cols, pad_c), x.dtype),
        compiler_params=target.compiler_params(2),
        interpret=target.interpret_params(),
    )
    out = call(image, geometry.row_start, geometry.row_count, tile_start, tile_count, wy_by_row, wx_tiles, x)
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
            wx = wx_tiles_ref[k, col_tile]  # (Qp, TW)

            def out_row_step(p, acc):
                g = g_ref[k, p, :, channels]  # (Qp, C_blk)
                cols = jnp.sum(wx[:, :, None] * g[:, None, :], axis=0)  # (TW, C_blk)
                wy = wy_ref[k, p, pl.ds(row0, tile_rows)]  # (TR,)
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
    """avg_pool.backward on the Triton kernel."""
    n, h, w, c = features_shape
    _, out_h, out_w, _ = g.shape
    out_rows, out_cols = next_power_of_two(out_h), next_power_of_two(out_w)
    tile_rows, tile_cols = block_sizes.tile_rows, block_sizes.tile_cols
    map_rows = round_up(h, tile_rows)
    wy = tiles(geometry.wy, out_rows, map_rows)[:, 0]  # (K, Pp, Hp)
    wx_tiles = tiles(geometry.wx, out_cols, tile_cols)  # (K, Tx, Qp, TW)
    tile_start, tile_count = tile_span(geometry.col_start, geometry.col_count, tile_cols)
    n_tiles = wx_tiles.shape[1]
    block_c = block_sizes.channel_block(c)
    pad_c = round_up(c, block_c)
    g = jnp.pad(g, ((0, 0), (0, out_rows - out_h), (0, out_cols - out_w), (0, pad_c - c)))
    call = pl.pallas_call(
        functools.partial(_backward_kernel, out_h=out_h),
        name=BACKWARD_NAME,
        grid=(n, map_rows // tile_rows, n_tiles, pad_c // block_c),
        in_specs=[pl.BlockSpec()] * 9,
        out_specs=pl.BlockSpec((1, tile_rows, tile_cols, block_c), lambda i, r, t, j: (i, r, t, j)),
        out_shape=jax.ShapeDtypeStruct((n, map_rows, n_tiles * tile_cols, pad_c), g.dtype),
        compiler_params=target.compiler_params(4),
        interpret=target.interpret_params(),
    )
    dx = call(
        ranges.order,
        ranges.start,
        geometry.row_start,
        geometry.row_count,
        tile_start,
        tile_count,
        wy,
        wx_tiles,
        g,
    )
    return dx[:, :h, :w, :c]
