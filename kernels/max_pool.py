"""max / corner_max RoIAlign on the kernels: a sample loop per bin and an owner-computes backward pass.

The forward kernel visits every sample of every bin (a per-box trip count, so adaptive
grids are exact with no cap), keeps the running max and the first sample that attains
it (row-major), as the XLA path does, and returns both.  The backward kernel routes
each output's cotangent to the four taps of its winning sample.  Both compute in the
dtype of the (already converted) features: float32, or float64 for float64 features.

The kernels exist once per backend (``max_pool_triton``, ``max_pool_mosaic``); this
module holds what both share (the per-sample arithmetic, corner_max's shares) and
:func:`forward_reference` / :func:`backward_reference`, what both compute, in plain
jax.numpy.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jax_roialign.core import sampling
from jax_roialign.core.corners import combine_terms, corners, decode_shares, encode_shares

from .config import BlockSizes
from .geometry import ImageRanges, MaxGeometry, sample_coordinate
from .target import Target

FORWARD_NAME = "roi_align_max_forward"
BACKWARD_NAME = "roi_align_max_features_backward"


class BoxBins(NamedTuple):
    """The scalars of one box, as a kernel reads them from its tables (see ``geometry.MaxGeometry``)."""

    n_samples: jax.Array
    grid_x: jax.Array
    y: tuple[jax.Array, jax.Array, jax.Array]
    x: tuple[jax.Array, jax.Array, jax.Array]

    def taps(self, p, q, t, height: int, width: int, dtype) -> tuple[sampling.Taps, sampling.Taps]:
        """The bilinear taps (y, x) of sample t (row-major in the grid) of bin (p, q)."""
        iy = jax.lax.div(t, self.grid_x).astype(dtype)
        ix = jax.lax.rem(t, self.grid_x).astype(dtype)
        y = sample_coordinate(*self.y, jnp.asarray(p).astype(dtype), iy)
        x = sample_coordinate(*self.x, jnp.asarray(q).astype(dtype), ix)
        return sampling.bilinear_taps(y, height), sampling.bilinear_taps(x, width)


def _broadcast_bins(geometry: MaxGeometry) -> tuple[sampling.AxisBins, sampling.AxisBins]:
    """The per-axis bins as (K, 1, 1, 1) arrays.

    Outside a kernel the coordinates use ``sampling.sample_coordinate`` itself, which
    keeps the division IEEE (XLA would turn a division by a broadcast grid into a
    multiplication by its reciprocal): the XLA path's arithmetic, to the bit.
    """
    return tuple(
        sampling.AxisBins(*(table[:, i, None, None, None] for i in range(3)))
        for table in (geometry.y_bins, geometry.x_bins)
    )


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
    by, bx = _broadcast_bins(geometry)
    t = jnp.maximum(arg, 0)
    grid_x = geometry.grid_x[:, None, None, None]
    iy = jax.lax.div(t, grid_x).astype(dtype)
    ix = jax.lax.rem(t, grid_x).astype(dtype)
    p = jnp.arange(out_h, dtype=dtype)[None, :, None, None]
    q = jnp.arange(out_w, dtype=dtype)[None, None, :, None]
    ty = sampling.bilinear_taps(sampling.sample_coordinate(by, p, iy), h)
    tx = sampling.bilinear_taps(sampling.sample_coordinate(bx, q, ix), w)
    image = geometry.image[:, None, None, None]
    chan = jnp.arange(x.shape[-1])[None, None, None, :]
    shares = decode_shares(code, dtype) if code is not None else [None] * 4
    terms = []
    for (r, c, weight), share in zip(corners(ty, tx), shares, strict=True):
        weight = weight if share is None else share * weight
        terms.append(weight * x[jnp.clip(image, 0, x.shape[0] - 1), r, c, chan])
    value = terms[0] + terms[1] + terms[2] + terms[3]
    return jnp.where(arg >= 0, value, jnp.zeros((), dtype))


def may_read(start: jax.Array, size: jax.Array, first: jax.Array, count: int, length: int) -> jax.Array:
    """Whether samples in [start, start + size] (either order) may read rows first .. first + count - 1.

    A sample at y reads rows floor(y) and floor(y) + 1 clamped to the map; one row of
    slack each way covers rounding.  Only used to skip work, so it may say yes wrongly.
    """
    lo = jnp.floor(jnp.clip(jnp.minimum(start, start + size), 0.0, length - 1.0)) - 1.0
    hi = jnp.floor(jnp.clip(jnp.maximum(start, start + size), 0.0, length - 1.0)) + 2.0
    first = first.astype(lo.dtype)
    return (lo < first + count) & (hi >= first)


def add_box_to_tile(
    acc: jax.Array,
    box: BoxBins,
    read_bin,
    origin: tuple[jax.Array, jax.Array],
    output_size: tuple[int, int],
    height: int,
    width: int,
) -> jax.Array:
    """acc (tile_rows, tile_cols, C) plus one box's share of the feature gradient on that tile.

    For every bin (row-major) that may read the tile whose first row and column are
    ``origin``, ``read_bin(p, q)`` gives (arg, g, code or None) per channel, and the
    cotangent g (times corner_max's share from code) times each corner's weight is added
    at the four taps of the winning sample ``arg`` (nothing where arg is -1).  Both
    backends' backward kernels run this, in the tile's dtype.
    """
    tile_rows, tile_cols, _ = acc.shape
    row0, col0 = origin
    rows = row0 + jax.lax.broadcasted_iota(jnp.int32, acc.shape, 0)
    cols = col0 + jax.lax.broadcasted_iota(jnp.int32, acc.shape, 1)
    out_h, out_w = output_size
    dtype = acc.dtype
    (y_start, y_bin, _), (x_start, x_bin, _) = box.y, box.x

    def bin_step(b, acc):
        p, q = jax.lax.div(b, out_w), jax.lax.rem(b, out_w)
        reads = may_read(y_start + p.astype(dtype) * y_bin, y_bin, row0, tile_rows, height) & may_read(
            x_start + q.astype(dtype) * x_bin, x_bin, col0, tile_cols, width
        )

        def add_bin(acc):
            arg, g, code = read_bin(p, q)
            ty, tx = box.taps(p, q, jnp.maximum(arg, 0), height, width, dtype)
            shares = decode_shares(code, dtype) if code is not None else [None] * 4
            for (r, c, w), share in zip(corners(ty, tx), shares, strict=True):
                cotangent = g if share is None else share * g
                update = jnp.where(arg >= 0, w * cotangent, 0.0)
                acc = acc + jnp.where((rows == r) & (cols == c), update, 0.0)
            return acc

        return jax.lax.cond(reads, add_bin, lambda acc: acc, acc)

    return jax.lax.fori_loop(0, out_h * out_w, bin_step, acc)


def _backend(target: Target):
    if target.backend == "mosaic":
        from . import max_pool_mosaic

        return max_pool_mosaic
    from . import max_pool_triton

    return max_pool_triton


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
    corner shares (:func:`encode_shares`).  Computes :func:`forward_reference`.
    """
    return _backend(target).forward(x, geometry, output_size, corner, block_sizes, target)


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

    ``arg`` and ``code`` come from :func:`forward`.  Computes :func:`backward_reference`,
    accumulating in g's dtype: each gradient tile has one writer that adds the boxes of
    its image in ascending box order, bin by bin, so the result is bitwise reproducible.
    """
    return _backend(target).backward(g, arg, code, ranges, geometry, features_shape, block_sizes, target)


def forward_reference(
    x: jax.Array, geometry: MaxGeometry, output_size: tuple[int, int], corner: bool
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """What :func:`forward` computes, vectorized over boxes, bins and channels: a loop over sample indices.

    Sample t of every bin is evaluated at once (masked where t >= the box's sample
    count), with the first-argmax update rule of the kernels.
    """
    _, h, w, c = x.shape
    k = geometry.image.shape[0]
    out_h, out_w = output_size
    dtype = x.dtype
    by, bx = _broadcast_bins(geometry)
    grid_x = geometry.grid_x[:, None, None, None]
    n_samples = geometry.n_samples[:, None, None, None]
    p = jnp.arange(out_h, dtype=dtype)[None, :, None, None]
    q = jnp.arange(out_w, dtype=dtype)[None, None, :, None]
    image = jnp.clip(geometry.image, 0, x.shape[0] - 1)[:, None, None, None]
    chan = jnp.arange(c)[None, None, None, :]
    shape = (k, out_h, out_w, c)

    def sample(t, state):
        best, arg, code = state
        t = jnp.asarray(t, jnp.int32)  # an eager loop counts in the default int (int64 under x64)
        iy = jax.lax.div(t, grid_x).astype(dtype)
        ix = jax.lax.rem(t, grid_x).astype(dtype)
        ty = sampling.bilinear_taps(sampling.sample_coordinate(by, p, iy), h)
        tx = sampling.bilinear_taps(sampling.sample_coordinate(bx, q, ix), w)
        terms = [weight * x[image, r, col, chan] for r, col, weight in corners(ty, tx)]
        value = combine_terms(terms, corner)
        take = (t < n_samples) & ((t == 0) | (value > best))
        code = jnp.where(take, encode_shares(terms), code) if corner else code
        return jnp.where(take, value, best), jnp.where(take, t, arg), code

    init = (jnp.zeros(shape, dtype), jnp.full(shape, -1, jnp.int32), jnp.zeros(shape, jnp.int32))
    best, arg, code = jax.lax.fori_loop(0, jnp.max(geometry.n_samples, initial=0), sample, init)
    return best, arg, code if corner else None


def backward_reference(
    g: jax.Array,
    x_shape: tuple[int, int, int, int],
    arg: jax.Array,
    code: jax.Array | None,
    geometry: MaxGeometry,
) -> jax.Array:
    """What :func:`backward` computes: the transpose of :func:`read_winners` applied to g."""
    zeros = jax.ShapeDtypeStruct(x_shape, g.dtype)
    output_size = g.shape[1:3]
    (dx,) = jax.linear_transpose(lambda x: read_winners(x, arg, code, geometry, output_size), zeros)(g)
    return dx
