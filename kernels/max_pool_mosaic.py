"""max / corner_max RoIAlign kernels for TPU (Pallas' Mosaic lowering): scalar-prefetched tables, pipelined DMAs.

Computes ``max_pool.forward_reference`` / ``max_pool.backward_reference``.

- The per-box tables (image, sample counts, and the bins as six 1-D columns, so that
  SMEM holds them unpadded) are scalar-prefetched into SMEM, at most
  ``mosaic.MAX_BOXES_PER_CALL`` boxes per call.
- Forward, one program per (box, channel block): one step per (bin, sample), bins
  row-major; the four taps of a sample are DMAs of one channel block each, started one
  sample ahead (``mosaic.pipelined``).
- Backward, one program per (image, row tile, column tile, channel block): a scalar
  pass lists the image's boxes whose samples may touch the tile, then each listed
  box's argmax, cotangent (and corner_max shares) arrive by DMA one box ahead.  More
  boxes than one call holds take several calls, each continuing the sums of the
  previous one in the order of a single call.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from jax_roialign.core.corners import combine_terms, corners, encode_shares

from .config import BlockSizes, round_up
from .geometry import ImageRanges, MaxGeometry
from .max_pool import (
    BACKWARD_NAME,
    FORWARD_NAME,
    BoxBins,
    add_box_to_tile,
    may_read,
)
from .mosaic import MAX_BOXES_PER_CALL, box_chunks, pipelined
from .target import Target


def _bin_columns(geometry: MaxGeometry) -> list[jax.Array]:
    """The six (K,) columns y start, y bin size, y grid, x start, x bin size, x grid."""
    return [table[:, i] for table in (geometry.y_bins, geometry.x_bins) for i in range(3)]


def _box(n_samples_ref, grid_x_ref, bin_refs, i) -> BoxBins:
    return BoxBins(
        n_samples_ref[i], grid_x_ref[i], tuple(r[i] for r in bin_refs[:3]), tuple(r[i] for r in bin_refs[3:])
    )


def _forward_kernel(*refs, corner: bool, height: int, width: int):
    """One (box, channel block): per bin, the max over its samples and the first argmax."""
    image_ref, n_samples_ref, grid_x_ref, *refs = refs
    bin_refs, (x_hbm, *refs) = refs[:6], refs[6:]
    if corner:
        out_ref, arg_ref, code_ref, taps_buffer, semaphores = refs
    else:
        (out_ref, arg_ref, taps_buffer, semaphores), code_ref = refs, None
    k = pl.program_id(0)
    _, out_h, out_w, block_c = out_ref.shape
    c0 = pl.multiple_of(pl.program_id(1) * block_c, block_c)
    image = image_ref[k]
    box = _box(n_samples_ref, grid_x_ref, bin_refs, k)
    n = box.n_samples
    dtype = out_ref.dtype
    out_ref[0] = jnp.zeros(out_ref.shape[1:], dtype)
    arg_ref[0] = jnp.full(arg_ref.shape[1:], -1, jnp.int32)
    if corner:
        code_ref[0] = jnp.zeros(code_ref.shape[1:], jnp.int32)

    def sample(j):
        b, t = j // n, j % n
        p, q = b // out_w, b % out_w
        return p, q, t, box.taps(p, q, t, height, width, dtype)

    def copies(j, slot):
        _, _, _, (ty, tx) = sample(j)
        return [
            pltpu.make_async_copy(
                x_hbm.at[image, r, pl.ds(c, 1), pl.ds(c0, block_c)], taps_buffer.at[slot, i], semaphores.at[slot, i]
            )
            for i, (r, c, _) in enumerate(corners(ty, tx))
        ]

    def body(j, slot, state):
        p, q, t, (ty, tx) = sample(j)
        best, arg, code = state
        terms = [w * taps_buffer[slot, i, 0] for i, (_, _, w) in enumerate(corners(ty, tx))]
        value = combine_terms(terms, corner)
        take = (t == 0) | (value > best)
        best, arg = jnp.where(take, value, best), jnp.where(take, t, arg)
        code = jnp.where(take, encode_shares(terms), code) if corner else code

        @pl.when(t == n - 1)
        def _():
            out_ref[0, p, pl.ds(q, 1)] = best[None]
            arg_ref[0, p, pl.ds(q, 1)] = arg[None]
            if corner:
                code_ref[0, p, pl.ds(q, 1)] = code[None]

        return best, arg, code

    init = (jnp.zeros((block_c,), dtype), jnp.full((block_c,), -1, jnp.int32), jnp.zeros((block_c,), jnp.int32))
    pipelined(out_h * out_w * n, copies, body, init)


def forward(
    x: jax.Array,
    geometry: MaxGeometry,
    output_size: tuple[int, int],
    corner: bool,
    block_sizes: BlockSizes,
    target: Target,
    max_boxes: int = MAX_BOXES_PER_CALL,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """max_pool.forward on the Mosaic kernel."""
    _, h, w, c = x.shape
    k = geometry.image.shape[0]
    out_h, out_w = output_size
    if k == 0:
        shape = (0, out_h, out_w, c)
        return jnp.zeros(shape, x.dtype), jnp.zeros(shape, jnp.int32), jnp.zeros(shape, jnp.int32) if corner else None
    block_c = block_sizes.channel_block(c)
    pad_c = round_up(c, block_c)
    x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, pad_c - c)))
    tables = [geometry.image, geometry.n_samples, geometry.grid_x, *_bin_columns(geometry)]
    n_outputs = 3 if corner else 2
    results = []
    for first, size in box_chunks(k, max_boxes):
        block = pl.BlockSpec((1, out_h, out_w, block_c), lambda i, j, *_: (i, 0, 0, j))
        shape = (size, out_h, out_w, pad_c)
        grid_spec = pltpu.PrefetchScalarGridSpec(
            num_scalar_prefetch=len(tables),
            grid=(size, pad_c // block_c),
            in_specs=[pl.BlockSpec(memory_space=pl.ANY)],
            out_specs=[block] * n_outputs,
            scratch_shapes=[pltpu.VMEM((2, 4, 1, block_c), x.dtype), pltpu.SemaphoreType.DMA((2, 4))],
        )
        call = pl.pallas_call(
            functools.partial(_forward_kernel, corner=corner, height=h, width=w),
            name=FORWARD_NAME,
            grid_spec=grid_spec,
            out_shape=[jax.ShapeDtypeStruct(shape, dt) for dt in (x.dtype, jnp.int32, jnp.int32)[:n_outputs]],
            compiler_params=target.compiler_params(2),
            interpret=target.interpret_params(),
        )
        chunk = slice(first, first + size)
        results.append(call(*(t[chunk] for t in tables), x))
    outs = [r[0] if len(results) == 1 else jnp.concatenate(r) for r in zip(*results, strict=True)]
    outs = [o[..., :c] for o in outs]
    return outs[0], outs[1], outs[2] if corner else None


def _backward_kernel(*refs, corner: bool, accumulate: bool, height: int, width: int):
    """One (image, row tile, column tile, channel block) of the feature gradient.

    The program owns its tile and adds, for every box of its image in ascending box
    order and every bin (row-major) that may read the tile, the cotangent times the
    weight (times the corner_max share) at each of the four taps of the bin's winning
    sample, per channel.  No other program writes the tile and the order is fixed, so
    the result is bitwise reproducible.  The box tables are in image order (entry i is
    box order[i]); ``start`` holds each image's first entry.
    """
    start_ref, order_ref, n_samples_ref, grid_x_ref, *refs = refs
    bin_refs, refs = refs[:6], refs[6:]
    n_arrays = 3 if corner else 2
    per_output_hbm, refs = refs[:n_arrays], refs[n_arrays:]
    dx_in_ref, refs = (refs[0], refs[1:]) if accumulate else (None, refs)
    dx_ref, hits, *buffers, semaphores = refs
    n, row_tile, col_tile = pl.program_id(0), pl.program_id(1), pl.program_id(2)
    _, tile_rows, tile_cols, block_c = dx_ref.shape
    out_h, out_w = buffers[0].shape[1:3]
    c0 = pl.multiple_of(pl.program_id(3) * block_c, block_c)
    row0, col0 = row_tile * tile_rows, col_tile * tile_cols
    dtype = dx_ref.dtype
    tile = (tile_rows, tile_cols, block_c)

    def scan(i, count):
        box = _box(n_samples_ref, grid_x_ref, bin_refs, i)
        (y_start, y_bin, _), (x_start, x_bin, _) = box.y, box.x
        reads = (
            (box.n_samples > 0)
            & may_read(y_start, out_h * y_bin, row0, tile_rows, height)
            & may_read(x_start, out_w * x_bin, col0, tile_cols, width)
        )
        hits[count] = i
        return count + reads.astype(jnp.int32)

    count = jax.lax.fori_loop(start_ref[n], start_ref[n + 1], scan, jnp.int32(0))

    def copies(h, slot):
        k = order_ref[hits[h]]
        return [
            pltpu.make_async_copy(src.at[k, :, :, pl.ds(c0, block_c)], buffer.at[slot], semaphores.at[i, slot])
            for i, (src, buffer) in enumerate(zip(per_output_hbm, buffers, strict=True))
        ]

    def body(h, slot, acc):
        box = _box(n_samples_ref, grid_x_ref, bin_refs, hits[h])

        def read_bin(p, q):
            code = buffers[2][slot, p, q] if corner else None
            return buffers[0][slot, p, q], buffers[1][slot, p, q], code

        return add_box_to_tile(acc, box, read_bin, (row0, col0), (out_h, out_w), height, width)

    init = dx_in_ref[0] if accumulate else jnp.zeros(tile, dtype)
    dx_ref[0] = pipelined(count, copies, body, init)


def backward(
    g: jax.Array,
    arg: jax.Array,
    code: jax.Array | None,
    ranges: ImageRanges,
    geometry: MaxGeometry,
    features_shape: tuple[int, int, int, int],
    block_sizes: BlockSizes,
    target: Target,
    max_boxes: int = MAX_BOXES_PER_CALL,
) -> jax.Array:
    """max_pool.backward on the Mosaic kernel."""
    n, h, w, c = features_shape
    k, out_h, out_w, _ = g.shape
    if k == 0:
        return jnp.zeros(features_shape, g.dtype)
    corner = code is not None
    tile_rows, tile_cols = block_sizes.tile_rows, block_sizes.tile_cols
    block_c = block_sizes.channel_block(c)
    map_rows, map_cols, pad_c = round_up(h, tile_rows), round_up(w, tile_cols), round_up(c, block_c)
    channel_pad = ((0, 0), (0, 0), (0, 0), (0, pad_c - c))
    per_output = [jnp.pad(a, channel_pad) for a in ([arg, g, code] if corner else [arg, g])]
    order = ranges.order
    # The box tables in image order, so that a call's boxes are one contiguous run of them.
    tables = [t[order] for t in (geometry.n_samples, geometry.grid_x, *_bin_columns(geometry))]
    dx = None
    for first, size in box_chunks(k, max_boxes):
        accumulate = dx is not None
        block = pl.BlockSpec((1, tile_rows, tile_cols, block_c), lambda i, r, t, j, *_: (i, r, t, j))
        grid_spec = pltpu.PrefetchScalarGridSpec(
            num_scalar_prefetch=2 + len(tables),
            grid=(n, map_rows // tile_rows, map_cols // tile_cols, pad_c // block_c),
            in_specs=[pl.BlockSpec(memory_space=pl.ANY)] * len(per_output) + ([block] if accumulate else []),
            out_specs=block,
            scratch_shapes=[
                pltpu.SMEM((size,), jnp.int32),
                *(pltpu.VMEM((2, out_h, out_w, block_c), a.dtype) for a in per_output),
                pltpu.SemaphoreType.DMA((len(per_output), 2)),
            ],
        )
        call = pl.pallas_call(
            functools.partial(_backward_kernel, corner=corner, accumulate=accumulate, height=h, width=w),
            name=BACKWARD_NAME,
            grid_spec=grid_spec,
            out_shape=jax.ShapeDtypeStruct((n, map_rows, map_cols, pad_c), g.dtype),
            input_output_aliases={2 + len(tables) + len(per_output): 0} if accumulate else {},
            compiler_params=target.compiler_params(4),
            interpret=target.interpret_params(),
        )
        chunk = slice(first, first + size)
        start = jnp.clip(ranges.start - first, 0, size).astype(jnp.int32)
        dx = call(start, order[chunk], *(t[chunk] for t in tables), *per_output, *([dx] if accumulate else []))
    return dx[:, :h, :w, :c]
