"""max / corner_max RoIAlign kernels for GPU (Pallas' Triton lowering): every array in global memory, loaded in place.

Computes ``max_pool.forward_reference`` / ``max_pool.backward_reference``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from jax_roialign.core.corners import combine_terms, corners, encode_shares

from .config import BlockSizes, round_up
from .geometry import ImageRanges, MaxGeometry
from .max_pool import (
    BACKWARD_NAME,
    FORWARD_NAME,
    BoxBins,
    add_box_to_tile,
)
from .target import Target


def _box(n_samples_ref, grid_x_ref, y_bins_ref, x_bins_ref, k) -> BoxBins:
    """The scalars of box k from the (K,) and (K, 3) tables."""
    return BoxBins(
        n_samples_ref[k],
        grid_x_ref[k],
        tuple(y_bins_ref[k, i] for i in range(3)),
        tuple(x_bins_ref[k, i] for i in range(3)),
    )


def _forward_kernel(
    image_ref,
    n_samples_ref,
    grid_x_ref,
    y_bins_ref,
    x_bins_ref,
    x_ref,
    out_ref,
    arg_ref,
    *code_ref,
    corner: bool,
    height: int,
    width: int,
):
    """One (box, channel block): per bin, the max over its samples and the first argmax."""
    k = pl.program_id(0)
    _, out_h, out_w, block_c = out_ref.shape
    channels = pl.ds(pl.multiple_of(pl.program_id(1) * block_c, block_c), block_c)
    image = image_ref[k]
    box = _box(n_samples_ref, grid_x_ref, y_bins_ref, x_bins_ref, k)
    dtype = out_ref.dtype

    def bin_step(b, carry):
        p, q = jax.lax.div(b, out_w), jax.lax.rem(b, out_w)

        def sample_step(t, state):
            best, arg, *code = state  # code: corner_max only
            ty, tx = box.taps(p, q, t, height, width, dtype)
            terms = [w * x_ref[image, r, c, channels] for r, c, w in corners(ty, tx)]
            value = combine_terms(terms, corner)
            take = (t == 0) | (value > best)
            code = [jnp.where(take, encode_shares(terms), c) for c in code]
            return jnp.where(take, value, best), jnp.where(take, t, arg), *code

        init = (jnp.zeros((block_c,), dtype), jnp.full((block_c,), -1, jnp.int32))
        init += (jnp.zeros((block_c,), jnp.int32),) if corner else ()
        best, arg, *code = jax.lax.fori_loop(0, box.n_samples, sample_step, init)
        out_ref[0, p, q] = best
        arg_ref[0, p, q] = arg
        for ref, value in zip(code_ref, code, strict=True):
            ref[0, p, q] = value
        return carry

    jax.lax.fori_loop(0, out_h * out_w, bin_step, 0)


def forward(
    x: jax.Array,
    geometry: MaxGeometry,
    output_size: tuple[int, int],
    corner: bool,
    block_sizes: BlockSizes,
    target: Target,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """max_pool.forward on the Triton kernel."""
    _, h, w, c = x.shape
    k = geometry.image.shape[0]
    out_h, out_w = output_size
    block_c = block_sizes.channel_block(c)
    pad_c = round_up(c, block_c)
    x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, pad_c - c)))
    block = pl.BlockSpec((1, out_h, out_w, block_c), lambda i, j: (i, 0, 0, j))
    shape = (k, out_h, out_w, pad_c)
    out_shape = [jax.ShapeDtypeStruct(shape, x.dtype), jax.ShapeDtypeStruct(shape, jnp.int32)]
    out_shape += [jax.ShapeDtypeStruct(shape, jnp.int32)] if corner else []
    call = pl.pallas_call(
        functools.partial(_forward_kernel, corner=corner, height=h, width=w),
        name=FORWARD_NAME,
        grid=(k, pad_c // block_c),
        in_specs=[pl.BlockSpec()] * 6,
        out_specs=[block] * len(out_shape),
        out_shape=out_shape,
        compiler_params=target.compiler_params(2),
        interpret=target.interpret_params(),
    )
    outs = call(geometry.image, geometry.n_samples, geometry.grid_x, geometry.y_bins, geometry.x_bins, x)
    outs = [o[..., :c] for o in outs]
    return outs[0], outs[1], outs[2] if corner else None


def _backward_kernel(
    order_ref,
    start_ref,
    n_samples_ref,
    grid_x_ref,
    y_bins_ref,
    x_bins_ref,
    arg_ref,
    g_ref,
    *refs,
    corner: bool,
    output_size: tuple[int, int],
    height: int,
    width: int,
):
    """One (image, row tile, column tile, channel block) of the feature gradient.

    The program owns its tile and adds, for every box of its image in ascending box
    order and every bin (row-major) that may read the tile, the cotangent times the
    weight (times the corner_max share) at each of the four taps of the bin's winning
    sample, per channel.  No other program writes the tile and the order is fixed, so
    the result is bitwise reproducible.
    """
    *code_ref, dx_ref = refs
    n, row_tile, col_tile = pl.program_id(0), pl.program_id(1), pl.program_id(2)
    _, tile_rows, tile_cols, block_c = dx_ref.shape
    channels = pl.ds(pl.multiple_of(pl.program_id(3) * block_c, block_c), block_c)
    origin = (row_tile * tile_rows, col_tile * tile_cols)

    def box_step(i, acc):
        k = order_ref[i]
        box = _box(n_samples_ref, grid_x_ref, y_bins_ref, x_bins_ref, k)

        def read_bin(p, q):
            code = code_ref[0][k, p, q, channels] if corner else None
            return arg_ref[k, p, q, channels], g_ref[k, p, q, channels], code

        return add_box_to_tile(acc, box, read_bin, origin, output_size, height, width)

    tile = (tile_rows, tile_cols, block_c)
    dx_ref[0] = jax.lax.fori_loop(start_ref[n], start_ref[n + 1], box_step, jnp.zeros(tile, dx_ref.dtype))


def backward(
    g: jax.Array,
    arg: jax.Array,
    code: jax.Array | None,
    ranges: ImageRanges,
    geometry: MaxGeometry,
    features_shape: tuple[int, int, int, int],
    block_sizes: BlockSizes,
    target: Target,
) -> jax.Array:
    """max_pool.backward on the Triton kernel."""
    n, h, w, c = features_shape
    _, out_h, out_w, _ = g.shape
    corner = code is not None
    tile_rows, tile_cols = block_sizes.tile_rows, block_sizes.tile_cols
    block_c = block_sizes.channel_block(c)
    map_rows, map_cols, pad_c = round_up(h, tile_rows), round_up(w, tile_cols), round_up(c, block_c)
    channel_pad = ((0, 0), (0, 0), (0, 0), (0, pad_c - c))
    per_output = [jnp.pad(a, channel_pad) for a in ([arg, g, code] if corner else [arg, g])]
    call = pl.pallas_call(
        functools.partial(_backward_kernel, corner=corner, output_size=(out_h, out_w), height=h, width=w),
        name=BACKWARD_NAME,
        grid=(n, map_rows // tile_rows, map_cols // tile_cols, pad_c // block_c),
        in_specs=[pl.BlockSpec()] * (6 + len(per_output)),
        out_specs=pl.BlockSpec((1, tile_rows, tile_cols, block_c), lambda i, r, t, j: (i, r, t, j)),
        out_shape=jax.ShapeDtypeStruct((n, map_rows, map_cols, pad_c), g.dtype),
        compiler_params=target.compiler_params(4),
        interpret=target.interpret_params(),
    )
    dx = call(
        ranges.order,
        ranges.start,
        geometry.n_samples,
        geometry.grid_x,
        geometry.y_bins,
        geometry.x_bins,
        *per_output,
    )
    return dx[:, :h, :w, :c]
