"""max / corner_max RoIAlign as Pallas kernels: a sample loop per bin and an owner-computes backward pass.

The forward kernel visits every sample of every bin (a per-box trip count, so adaptive
grids are exact with no cap), keeps the running max and the first sample that attains
it (row-major), as the XLA path does, and returns both.  The backward kernel routes
each output's cotangent to the four taps of its winning sample.  Both compute in the
dtype of the (already converted) features: float32, or float64 for float64 features.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from jax_roialign.core import sampling

from .config import BlockSizes, round_up
from .geometry import ImageRanges, MaxGeometry, sample_coordinate
from .target import Target

FORWARD_NAME = "roi_align_max_forward"
BACKWARD_NAME = "roi_align_max_features_backward"

# corner_max: each corner's share of the cotangent, 2**-code (code 4: no share), 3 bits a corner.
_SHARE_BITS = 3
_NO_SHARE = 4


def combine_terms(terms: list[jax.Array], corner: bool) -> jax.Array:
    """A sample's value from its four weighted corner terms, in the XLA path's order of operations.

    "max" adds them (the interpolated value); "corner_max" takes onnxruntime's largest term.
    """
    if corner:
        return jnp.maximum(jnp.maximum(jnp.maximum(terms[0], terms[1]), terms[2]), terms[3])
    return terms[0] + terms[1] + terms[2] + terms[3]


def encode_shares(terms: list[jax.Array]) -> jax.Array:
    """corner_max: int32 code of each corner's share of the cotangent (JAX's tie rule for max).

    The shares are the derivatives of the corner_max combination with respect to
    its terms: 1 for a unique largest term; ties split halves per ``jnp.maximum``
    (so 1/2, 1/4, 1/8), exactly as autodiff of the XLA path's combination gives.
    """
    _, pullback = jax.vjp(lambda *t: combine_terms(list(t), corner=True), *terms)
    code = jnp.zeros(terms[0].shape, jnp.int32)
    for i, share in enumerate(pullback(jnp.ones_like(terms[0]))):
        exponent = jnp.where(share >= 1, 0, jnp.where(share >= 0.5, 1, jnp.where(share >= 0.25, 2, 3)))
        exponent = jnp.where(share == 0, _NO_SHARE, exponent)
        code = code | (exponent << (_SHARE_BITS * i))
    return code


def decode_shares(code: jax.Array, dtype: jnp.dtype) -> list[jax.Array]:
    """The four shares that :func:`encode_shares` encoded, as exact powers of two (or 0)."""
    shares = []
    for i in range(4):
        exponent = (code >> (_SHARE_BITS * i)) & ((1 << _SHARE_BITS) - 1)
        share = jnp.where(exponent == 0, 1.0, jnp.where(exponent == 1, 0.5, jnp.where(exponent == 2, 0.25, 0.125)))
        shares.append(jnp.where(exponent == _NO_SHARE, 0.0, share).astype(dtype))
    return shares


class _Box:
    """The scalars of box k, read from the MaxGeometry tables inside a kernel."""

    def __init__(self, refs, k):
        n_samples_ref, grid_x_ref, y_bins_ref, x_bins_ref = refs
        self.n_samples = n_samples_ref[k]
        self.grid_x = grid_x_ref[k]
        self.y = tuple(y_bins_ref[k, i] for i in range(3))
        self.x = tuple(x_bins_ref[k, i] for i in range(3))

    def taps(self, p, q, t, height: int, width: int, dtype) -> tuple[sampling.Taps, sampling.Taps]:
        """The bilinear taps (y, x) of sample t (row-major in the grid) of bin (p, q)."""
        iy = jax.lax.div(t, self.grid_x).astype(dtype)
        ix = jax.lax.rem(t, self.grid_x).astype(dtype)
        y = sample_coordinate(*self.y, jnp.asarray(p).astype(dtype), iy)
        x = sample_coordinate(*self.x, jnp.asarray(q).astype(dtype), ix)
        return sampling.bilinear_taps(y, height), sampling.bilinear_taps(x, width)


def _corners(ty: sampling.Taps, tx: sampling.Taps) -> list[tuple[jax.Array, jax.Array, jax.Array]]:
    """(row, column, weight) of the four corners, in the XLA path's order."""
    return [
        (ty.lo, tx.lo, ty.w_lo * tx.w_lo),
        (ty.lo, tx.hi, ty.w_lo * tx.w_hi),
        (ty.hi, tx.lo, ty.w_hi * tx.w_lo),
        (ty.hi, tx.hi, ty.w_hi * tx.w_hi),
    ]


def read_winners(
    x: jax.Array, arg: jax.Array, code: jax.Array | None, geometry: MaxGeometry, output_size: tuple[int, int]
) -> jax.Array:
    """(K, out_h, out_w, C): x read at each bin's winning sample, the linear map whose transpose is :func:`backward`.

    "max": the interpolated value of sample ``arg`` (the sum of its four weighted corners);
    "corner_max" (``code`` given): its corners weighted by their shares of the cotangent,
    which at the winning corner is the corner_max value itself.  0 where ``arg`` is -1 (no
    sample, or a box whose batch index lies outside [0, N)).  Plain jax.numpy (XLA), in
    x's dtype: it is the tangent and the primal value of the kernels' max modes.
    """
    _, h, w, _ = x.shape
    out_h, out_w = output_size
    dtype = x.dtype
    bins = [(table[:, 0], table[:, 1], table[:, 2]) for table in (geometry.y_bins, geometry.x_bins)]
    (y0, ybin, ygrid), (x0, xbin, xgrid) = ([a[:, None, None, None] for a in b] for b in bins)
    t = jnp.maximum(arg, 0)
    grid_x = geometry.grid_x[:, None, None, None]
    iy = jax.lax.div(t, grid_x).astype(dtype)
    ix = jax.lax.rem(t, grid_x).astype(dtype)
    p = jnp.arange(out_h, dtype=dtype)[None, :, None, None]
    q = jnp.arange(out_w, dtype=dtype)[None, None, :, None]
    ty = sampling.bilinear_taps(sample_coordinate(y0, ybin, ygrid, p, iy), h)
    tx = sampling.bilinear_taps(sample_coordinate(x0, xbin, xgrid, q, ix), w)
    image = geometry.image[:, None, None, None]
    chan = jnp.arange(x.shape[-1])[None, None, None, :]
    shares = decode_shares(code, dtype) if code is not None else [None] * 4
    terms = []
    for (r, c, weight), share in zip(_corners(ty, tx), shares, strict=True):
        weight = weight if share is None else share * weight
        terms.append(weight * x[jnp.clip(image, 0, x.shape[0] - 1), r, c, chan])
    value = terms[0] + terms[1] + terms[2] + terms[3]
    return jnp.where(arg >= 0, value, jnp.zeros((), dtype))


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
    target: Target,
    corner: bool,
    height: int,
    width: int,
):
    """One (box, channel block): per bin, the max over its samples and the first argmax."""
    k = pl.program_id(0)
    _, out_h, out_w, block_c = out_ref.shape
    channels = pl.ds(pl.multiple_of(pl.program_id(1) * block_c, block_c), block_c)
    image = image_ref[k]
    box = _Box((n_samples_ref, grid_x_ref, y_bins_ref, x_bins_ref), k)
    dtype = out_ref.dtype

    def bin_step(b, carry):
        p, q = jax.lax.div(b, out_w), jax.lax.rem(b, out_w)

        def sample_step(t, state):
            best, arg, *code = state  # code: corner_max only
            ty, tx = box.taps(p, q, t, height, width, dtype)
            terms = [w * target.read(x_ref, image, r, c, channels) for r, c, w in _corners(ty, tx)]
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
    """(out, arg, code) of max (corner=False) or corner_max RoIAlign of features x (N, H, W, C).

    out (K, out_h, out_w, C) in x's dtype (the accumulation dtype): the max over each
    bin's samples, 0 for a bin without samples or a box whose batch index lies
    outside [0, N).  arg: int32, same shape, the first (row-major) sample attaining
    it, -1 where none.  code: corner_max only (else None), the winning sample's
    corner shares (:func:`encode_shares`).
    """
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
    call = target.pallas_call(
        functools.partial(_forward_kernel, target=target, corner=corner, height=h, width=w),
        name=FORWARD_NAME,
        grid=(k, pad_c // block_c),
        in_specs=[target.scalars()] * 5 + [target.in_memory()],
        out_specs=[block] * len(out_shape),
        out_shape=out_shape,
    )
    outs = call(geometry.image, geometry.n_samples, geometry.grid_x, geometry.y_bins, geometry.x_bins, x)
    outs = [o[..., :c] for o in outs]
    return outs[0], outs[1], outs[2] if corner else None


def _may_read(start: jax.Array, size: jax.Array, first: jax.Array, count: int, length: int) -> jax.Array:
    """Whether samples in [start, start + size] (either order) may read rows first .. first + count - 1.

    A sample at y reads rows floor(y) and floor(y) + 1 clamped to the map; one row of
    slack each way covers rounding.  Only used to skip work, so it may say yes wrongly.
    """
    lo = jnp.floor(jnp.clip(jnp.minimum(start, start + size), 0.0, length - 1.0)) - 1.0
    hi = jnp.floor(jnp.clip(jnp.maximum(start, start + size), 0.0, length - 1.0)) + 2.0
    first = first.astype(lo.dtype)
    return (lo < first + count) & (hi >= first)


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
    target: Target,
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
    row0, col0 = row_tile * tile_rows, col_tile * tile_cols
    out_h, out_w = output_size
    dtype = dx_ref.dtype
    tile = (tile_rows, tile_cols, block_c)
    rows = row0 + jax.lax.broadcasted_iota(jnp.int32, tile, 0)
    cols = col0 + jax.lax.broadcasted_iota(jnp.int32, tile, 1)

    def box_step(i, acc):
        k = order_ref[i]
        box = _Box((n_samples_ref, grid_x_ref, y_bins_ref, x_bins_ref), k)
        y_start, y_bin, _ = box.y
        x_start, x_bin, _ = box.x

        def bin_step(b, acc):
            p, q = jax.lax.div(b, out_w), jax.lax.rem(b, out_w)
            may_read = _may_read(y_start + p.astype(dtype) * y_bin, y_bin, row0, tile_rows, height) & _may_read(
                x_start + q.astype(dtype) * x_bin, x_bin, col0, tile_cols, width
            )

            def add_bin(acc):
                arg = target.read(arg_ref, k, p, q, channels)
                g = target.read(g_ref, k, p, q, channels)
                ty, tx = box.taps(p, q, jnp.maximum(arg, 0), height, width, dtype)
                shares = decode_shares(target.read(code_ref[0], k, p, q, channels), dtype) if corner else [None] * 4
                for (r, c, w), share in zip(_corners(ty, tx), shares, strict=True):
                    cotangent = g if share is None else share * g
                    update = jnp.where(arg >= 0, w * cotangent, 0.0)
                    acc = acc + jnp.where((rows == r) & (cols == c), update, 0.0)
                return acc

            return jax.lax.cond(may_read, add_bin, lambda acc: acc, acc)

        return jax.lax.fori_loop(0, out_h * out_w, bin_step, acc)

    dx_ref[0] = jax.lax.fori_loop(start_ref[n], start_ref[n + 1], box_step, jnp.zeros(tile, dtype))


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
    """(N, H, W, C) gradient of the features for the output cotangent g (K, out_h, out_w, C).

    ``arg`` and ``code`` come from :func:`forward`.  Accumulates in g's dtype;
    deterministic (see ``_backward_kernel``).
    """
    n, h, w, c = features_shape
    _, out_h, out_w, _ = g.shape
    corner = code is not None
    tile_rows, tile_cols = block_sizes.tile_rows, block_sizes.tile_cols
    block_c = block_sizes.channel_block(c)
    map_rows, map_cols, pad_c = round_up(h, tile_rows), round_up(w, tile_cols), round_up(c, block_c)
    channel_pad = ((0, 0), (0, 0), (0, 0), (0, pad_c - c))
    per_output = [jnp.pad(a, channel_pad) for a in ([arg, g, code] if corner else [arg, g])]
    call = target.pallas_call(
        functools.partial(
            _backward_kernel, target=target, corner=corner, output_size=(out_h, out_w), height=h, width=w
        ),
        name=BACKWARD_NAME,
        grid=(n, map_rows // tile_rows, map_cols // tile_cols, pad_c // block_c),
        in_specs=[target.scalars()] * 6 + [target.in_memory()] * len(per_output),
        out_specs=pl.BlockSpec((1, tile_rows, tile_cols, block_c), lambda i, r, t, j: (i, r, t, j)),
        out_shape=jax.ShapeDtypeStruct((n, map_rows, map_cols, pad_c), g.dtype),
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
