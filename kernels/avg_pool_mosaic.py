"""avg RoIAlign kernels for TPU (Pallas' Mosaic lowering): scalar-prefetched box tables, double-buffered DMAs.

Computes ``avg_pool.forward_reference`` / ``avg_pool.backward_reference``.

- Forward, one program per (box, channel block): the box's row weights and column-tile
  weights arrive as blocks (pipelined by Pallas from one box to the next); the map
  rows it reads, ``tile_cols`` columns at a time, are DMAs from HBM, each started one
  step ahead (``mosaic.pipelined``).
- Backward, one program per (image, row tile, column tile, channel block): a scalar
  pass over the image's boxes lists those that read the tile (in SMEM), then each
  listed box's weight tiles and cotangent are DMAs started one box ahead.  Every DMA
  moves whole trailing dimensions or a channel block: weight tiles are laid out as
  (K, tiles, out, tile) so that a tile starts at an aligned offset.
- More boxes than ``mosaic.MAX_BOXES_PER_CALL`` take several calls; in the backward
  pass each call continues the sums of the previous one (input/output aliasing), in
  the same order as a single call.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from .avg_pool import BACKWARD_NAME, FORWARD_NAME
from .config import BlockSizes, round_up
from .geometry import AvgGeometry, ImageRanges, tile_span, tiles
from .mosaic import MAX_BOXES_PER_CALL, box_chunks, pipelined
from .target import Target

SUBLANES = 8


def _forward_kernel(
    image_ref,
    row_start_ref,
    row_count_ref,
    tile_start_ref,
    tile_count_ref,
    wy_by_row_ref,
    wx_tiles_ref,
    x_hbm,
    out_ref,
    x_buffer,
    semaphores,
):
    """One (box, channel block): out = sum over the box's rows r of wy[:, r] (x) (Wx @ X[r]).

    One step per (row, column tile) of the box's span, rows outer: a row's tiles are
    summed, then added to the output with the row's weights.
    """
    k = pl.program_id(0)
    _, out_h, out_cols, block_c = out_ref.shape
    tile_cols = x_buffer.shape[1]
    c0 = pl.multiple_of(pl.program_id(1) * block_c, block_c)
    image, row_start, tile_start, n_tiles = image_ref[k], row_start_ref[k], tile_start_ref[k], tile_count_ref[k]
    dtype = out_ref.dtype

    def copies(j, slot):
        row = row_start + j // n_tiles
        col = pl.multiple_of((tile_start + j % n_tiles) * tile_cols, tile_cols)
        source = x_hbm.at[image, row, pl.ds(col, tile_cols), pl.ds(c0, block_c)]
        return [pltpu.make_async_copy(source, x_buffer.at[slot], semaphores.at[slot])]

    def body(j, slot, carry):
        acc, row_acc = carry
        t = j % n_tiles
        wx = wx_tiles_ref[0, tile_start + t]  # (Qp, TW)
        x = x_buffer[slot]  # (TW, C_blk)
        row_acc = jnp.where(t == 0, jnp.zeros_like(row_acc), row_acc) + jnp.sum(wx[:, :, None] * x[None], axis=1)

        def add_row(acc):
            return acc + wy_by_row_ref[0, row_start + j // n_tiles][:, None, None] * row_acc[None]

        return jax.lax.cond(t == n_tiles - 1, add_row, lambda acc: acc, acc), row_acc

    init = (jnp.zeros((out_h, out_cols, block_c), dtype), jnp.zeros((out_cols, block_c), dtype))
    out_ref[0] = pipelined(row_count_ref[k] * n_tiles, copies, body, init)[0]


def forward(
    x: jax.Array,
    image: jax.Array,
    geometry: AvgGeometry,
    output_size: tuple[int, int],
    block_sizes: BlockSizes,
    target: Target,
    max_boxes: int = MAX_BOXES_PER_CALL,
) -> jax.Array:
    """avg_pool.forward on the Mosaic kernel."""
    _, h, w, c = x.shape
    k = image.shape[0]
    out_h, out_w = output_size
    if k == 0:
        return jnp.zeros((0, out_h, out_w, c), x.dtype)
    out_cols = round_up(out_w, SUBLANES)
    tile_cols = block_sizes.tile_cols
    wy_by_row = jnp.swapaxes(geometry.wy, 1, 2)  # (K, H, out_h)
    wx_tiles = tiles(geometry.wx, out_cols, tile_cols)  # (K, Tx, Qp, TW)
    tile_start, tile_count = tile_span(geometry.col_start, geometry.col_count, tile_cols)
    n_tiles = wx_tiles.shape[1]
    block_c = block_sizes.channel_block(c)
    pad_c = round_up(c, block_c)
    x = jnp.pad(x, ((0, 0), (0, 0), (0, n_tiles * tile_cols - w), (0, pad_c - c)))
    tables = (image, geometry.row_start, geometry.row_count, tile_start, tile_count)
    outs = []
    for first, size in box_chunks(k, max_boxes):
        grid_spec = pltpu.PrefetchScalarGridSpec(
            num_scalar_prefetch=len(tables),
            grid=(size, pad_c // block_c),
            in_specs=[
                pl.BlockSpec((1, h, out_h), lambda i, j, *_: (i, 0, 0)),
                pl.BlockSpec((1, n_tiles, out_cols, tile_cols), lambda i, j, *_: (i, 0, 0, 0)),
                pl.BlockSpec(memory_space=pl.ANY),
            ],
            out_specs=pl.BlockSpec((1, out_h, out_cols, block_c), lambda i, j, *_: (i, 0, 0, j)),
            scratch_shapes=[pltpu.VMEM((2, tile_cols, block_c), x.dtype), pltpu.SemaphoreType.DMA((2,))],
        )
        call = pl.pallas_call(
            _forward_kernel,
            name=FORWARD_NAME,
            grid_spec=grid_spec,
            out_shape=jax.ShapeDtypeStruct((size, out_h, out_cols, pad_c), x.dtype),
            compiler_params=target.compiler_params(2),
            interpret=target.interpret_params(),
        )
        chunk = slice(first, first + size)
        outs.append(call(*(t[chunk] for t in tables), wy_by_row[chunk], wx_tiles[chunk], x))
    out = outs[0] if len(outs) == 1 else jnp.concatenate(outs)
    return out[:, :, :out_w, :c]


def _backward_kernel(
    start_ref,
    order_ref,
    row_start_ref,
    row_count_ref,
    tile_start_ref,
    tile_count_ref,
    wy_tiles_hbm,
    wx_tiles_hbm,
    g_hbm,
    *refs,
    accumulate: bool,
):
    """One (image, row tile, column tile, channel block) of the feature gradient.

    The program owns its tile and adds every box of its image that reads the tile, in
    ascending box order, each as ``sum_p wy[p, rows] (x) (Wx[:, cols]^T @ G[p])`` (p
    ascending): no other program writes the tile and the order is fixed, so the result
    is bitwise reproducible.  The box tables are in image order (entry i is box
    order[i]); ``start`` holds each image's first entry.
    """
    if accumulate:
        dx_in_ref, dx_ref, hits, wy_buffer, wx_buffer, g_buffer, semaphores = refs
    else:
        dx_ref, hits, wy_buffer, wx_buffer, g_buffer, semaphores = refs
    n, row_tile, col_tile = pl.program_id(0), pl.program_id(1), pl.program_id(2)
    _, tile_rows, tile_cols, block_c = dx_ref.shape
    out_h = g_buffer.shape[1]
    c0 = pl.multiple_of(pl.program_id(3) * block_c, block_c)
    row0 = row_tile * tile_rows

    def scan(i, count):
        row_start, tile_start = row_start_ref[i], tile_start_ref[i]
        reads_tile = (
            (row_start < row0 + tile_rows)
            & (row_start + row_count_ref[i] > row0)
            & (tile_start <= col_tile)
            & (col_tile < tile_start + tile_count_ref[i])
        )
        hits[count] = i
        return count + reads_tile.astype(jnp.int32)

    count = jax.lax.fori_loop(start_ref[n], start_ref[n + 1], scan, jnp.int32(0))

    def copies(h, slot):
        k = order_ref[hits[h]]
        return [
            pltpu.make_async_copy(wy_tiles_hbm.at[k, row_tile], wy_buffer.at[slot], semaphores.at[0, slot]),
            pltpu.make_async_copy(wx_tiles_hbm.at[k, col_tile], wx_buffer.at[slot], semaphores.at[1, slot]),
            pltpu.make_async_copy(g_hbm.at[k, :, :, pl.ds(c0, block_c)], g_buffer.at[slot], semaphores.at[2, slot]),
        ]

    def body(h, slot, acc):
        wx = wx_buffer[slot]  # (Qp, TW)

        def out_row(p, acc):
            g = g_buffer[slot, p]  # (Qp, C_blk)
            cols = jnp.sum(wx[:, :, None] * g[:, None, :], axis=0)  # (TW, C_blk)
            return acc + wy_buffer[slot, p][:, None, None] * cols[None]

        return jax.lax.fori_loop(0, out_h, out_row, acc)

    init = dx_in_ref[0] if accumulate else jnp.zeros((tile_rows, tile_cols, block_c), dx_ref.dtype)
    dx_ref[0] = pipelined(count, copies, body, init)


def backward(
    g: jax.Array,
    ranges: ImageRanges,
    geometry: AvgGeometry,
    features_shape: tuple[int, int, int, int],
    block_sizes: BlockSizes,
    target: Target,
    max_boxes: int = MAX_BOXES_PER_CALL,
) -> jax.Array:
    """avg_pool.backward on the Mosaic kernel."""
    n, h, w, c = features_shape
    k, out_h, out_w, _ = g.shape
    out_cols = round_up(out_w, SUBLANES)
    tile_rows, tile_cols = block_sizes.tile_rows, block_sizes.tile_cols
    wy_tiles = tiles(geometry.wy, out_h, tile_rows)  # (K, Hp / TR, out_h, TR)
    wx_tiles = tiles(geometry.wx, out_cols, tile_cols)  # (K, Tx, Qp, TW)
    tile_start, tile_count = tile_span(geometry.col_start, geometry.col_count, tile_cols)
    map_rows, n_tiles = wy_tiles.shape[1] * tile_rows, wx_tiles.shape[1]
    block_c = block_sizes.channel_block(c)
    pad_c = round_up(c, block_c)
    g = jnp.pad(g, ((0, 0), (0, 0), (0, out_cols - out_w), (0, pad_c - c)))
    if k == 0:
        return jnp.zeros(features_shape, g.dtype)
    order = ranges.order
    # The box tables in image order, so that a call's boxes are one contiguous run of them.
    tables = [t[order] for t in (geometry.row_start, geometry.row_count, tile_start, tile_count)]
    dx = None
    for first, size in box_chunks(k, max_boxes):
        accumulate = dx is not None
        block = pl.BlockSpec((1, tile_rows, tile_cols, block_c), lambda i, r, t, j, *_: (i, r, t, j))
        grid_spec = pltpu.PrefetchScalarGridSpec(
            num_scalar_prefetch=2 + len(tables),
            grid=(n, map_rows // tile_rows, n_tiles, pad_c // block_c),
            in_specs=[pl.BlockSpec(memory_space=pl.ANY)] * 3 + ([block] if accumulate else []),
            out_specs=block,
            scratch_shapes=[
                pltpu.SMEM((size,), jnp.int32),
                pltpu.VMEM((2, out_h, tile_rows), g.dtype),
                pltpu.VMEM((2, out_cols, tile_cols), g.dtype),
                pltpu.VMEM((2, out_h, out_cols, block_c), g.dtype),
                pltpu.SemaphoreType.DMA((3, 2)),
            ],
        )
        call = pl.pallas_call(
            functools.partial(_backward_kernel, accumulate=accumulate),
            name=BACKWARD_NAME,
            grid_spec=grid_spec,
            out_shape=jax.ShapeDtypeStruct((n, map_rows, n_tiles * tile_cols, pad_c), g.dtype),
            input_output_aliases={2 + len(tables) + 3: 0} if accumulate else {},
            compiler_params=target.compiler_params(4),
            interpret=target.interpret_params(),
        )
        chunk = slice(first, first + size)
        start = jnp.clip(ranges.start - first, 0, size).astype(jnp.int32)
        dx = call(
            start, order[chunk], *(t[chunk] for t in tables), wy_tiles, wx_tiles, g, *([dx] if accumulate else [])
        )
    return dx[:, :h, :w, :c]
