"""avg RoIAlign as a sum of separable tap reads, built on ``core.loop_sum``.

avg RoIAlign is ``out[k, p, q] = sum_{a, b} wy[k, p, a] * wx[k, q, b] * X[image_k, ry[k, p, a], rx[k, q, b]]``
with per-axis tap rows ``ry`` / ``rx`` and weights ``wy`` / ``wx`` (``docs/conventions.md``
section 1, ``core.sampling``):

- a fixed grid (``sampling_ratio > 0``) has ``2 * sampling_ratio`` taps per axis (the two
  neighbours of each sample), all read in one term;
- an adaptive grid reads, per bin, a window of consecutive rows (columns) from the first
  one it touches; the windows are cut into chunks of ``CHUNK`` rows x columns, one term
  per chunk, and the number of terms is the run-time extent of the widest bin, so a bin
  of any size is exact with one compiled program.

Each term reads its taps with one gather per tap, which XLA fuses into a single loop over
the output (nothing gathered is stored).  The terms are linear in the features and in the
per-axis weight tables, which are computed once from the boxes (plain JAX, so the
boxes' derivative is the chain rule through them).  Both transposes are written out:
the features' (``_Scatter``: one scatter-add per row tap of all its column taps, in a
fixed order, over chunks of boxes whose update stays within ``SCATTER_BYTES``:
deterministic and bounded in memory) and the weights' (``_WeightsTranspose``: per tap,
a gather fused into its reduction over the channels).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import sampling
from jax_roialign.core.avals import zeros_like_varying
from jax_roialign.core.bins import box_bins
from jax_roialign.core.loop_sum import Term, loop_sum

# Rows x columns of an adaptive window read by one term.
CHUNK: tuple[int, int] = (2, 8)
# Largest scatter update of the features' transpose (bytes): (boxes, P, Q, column taps, C).
SCATTER_BYTES = 1 << 26


@dataclasses.dataclass(frozen=True)
class _Taps:
    """How the taps are laid out in tables and cut into terms (static)."""

    spec: RoIAlignSpec
    height: int
    width: int

    @property
    def fixed(self) -> bool:
        return self.spec.sampling_ratio > 0

    @property
    def chunk(self) -> tuple[int, int]:
        """Row taps and column taps per term."""
        if self.fixed:
            return 2 * self.spec.sampling_ratio, 2 * self.spec.sampling_ratio
        return min(CHUNK[0], self.height), min(CHUNK[1], self.width)

    def tables(self, boxes: jax.Array):
        """((ry, wy), (rx, wx), number of terms, column chunks per row chunk) of (K, 4) boxes.

        Rows (K, P, T) int32 and their weights, differentiable in the boxes; for an
        adaptive grid, T covers every row from each bin's first one (a multiple of the
        chunk), and the number of terms covers the widest bin of the call.
        """
        out_h, out_w = self.spec.output_size
        by, bx = box_bins(boxes, self.spec)
        if self.fixed:
            grid = self.spec.sampling_ratio
            ty = jax.vmap(functools.partial(sampling.fixed_grid_taps, pooled=out_h, grid=grid, length=self.height))(by)
            tx = jax.vmap(functools.partial(sampling.fixed_grid_taps, pooled=out_w, grid=grid, length=self.width))(bx)
            return ty, tx, jnp.int32(1), jnp.int32(1)
        cy, cx = self.chunk
        ty, rows = _window_table(by, out_h, self.height, cy)
        tx, cols = _window_table(bx, out_w, self.width, cx)
        return ty, tx, rows * cols, jnp.maximum(cols, 1)


def _window_table(bins: sampling.AxisBins, pooled: int, length: int, chunk: int):
    """((rows, weights) (K, pooled, T), chunks needed): every row of each bin from its first one.

    T is ``length`` rounded up to the chunk; the chunks needed cover the widest bin.
    """
    size = -(-length // chunk) * chunk
    first, count = jax.vmap(functools.partial(sampling.rows_read, pooled=pooled, length=length))(
        jax.lax.stop_gradient(bins)
    )
    taps = jax.vmap(functools.partial(sampling.adaptive_grid_taps, pooled=pooled, length=length, window=size))
    chunks = jnp.ceil(jnp.max(count, initial=0.0) / chunk).astype(jnp.int32)
    return taps(bins, start=first), chunks


def _chunk(table: tuple[jax.Array, jax.Array], index: jax.Array, size: int) -> tuple[jax.Array, jax.Array]:
    """Taps index * size .. + size - 1 of a (rows, weights) table."""
    if table[0].shape[2] == size:
        return table
    return tuple(jax.lax.dynamic_slice_in_dim(a, index * size, size, axis=2) for a in table)


def _term_taps(layout: _Taps, t, weights, consts):
    """((ry, wy), (rx, wx)) of term t: one chunk of rows and one of columns."""
    (wy, wx), (image, ry, rx, column_chunks) = weights, consts
    cy, cx = layout.chunk
    i, j = t // column_chunks, t % column_chunks
    return image, _chunk((ry, wy), i, cy), _chunk((rx, wx), j, cx)


def _bin_image(image: jax.Array) -> jax.Array:
    """The image each bin reads, broadcastable to (K, P, Q): image (K,) per box, or (K, P, Q) per bin."""
    return image[:, None, None] if image.ndim == 1 else image


def read_taps(x: jax.Array, image: jax.Array, ty, tx) -> jax.Array:
    """sum_{a, b} wy[k, p, a] * wx[k, q, b] * x[image[k], ry[k, p, a], rx[k, q, b]]: (K, P, Q, C), in x's dtype.

    One gather per tap, summed row tap by row tap and, within one, column tap by column
    tap, in index order.
    """
    (ry, wy), (rx, wx) = ty, tx
    out = None
    for a in range(ry.shape[2]):
        row = None
        for b in range(rx.shape[2]):
            value = wx[:, None, :, b, None] * x[_bin_image(image), ry[:, :, a, None], rx[:, None, :, b]]
            row = value if row is None else row + value
        row = wy[:, :, a, None, None] * row
        out = row if out is None else out + row
    return out


@dataclasses.dataclass(frozen=True)
class _Read:
    """Term t of the tap sum: a loop_sum term, linear in x, differentiable in the weights
    (hashable by value, so that calls share compilations)."""

    layout: _Taps

    def __call__(self, t, x, weights, consts):
        image, ty, tx = _term_taps(self.layout, t, weights, consts)
        return read_taps(x, image, ty, tx)


@dataclasses.dataclass(frozen=True)
class _Scatter:
    """Term t's transpose: one scatter-add per row tap (all its column taps), in order,
    over chunks of boxes of at most SCATTER_BYTES of update."""

    layout: _Taps

    def __call__(self, t, ct, weights, consts, shapes):
        image, ty, tx = _term_taps(self.layout, t, weights, consts)
        return _scatter(ct, image, ty, tx, shapes)


@dataclasses.dataclass(frozen=True)
class _WeightsTranspose:
    """Term t's vector-Jacobian product in the weight tables (the boxes' gradient).

    With ``D[k, p, a, q, b] = sum_c ct[k, p, q, c] * x[image[k], ry[k, p, a], rx[k, q, b], c]``,
    the cotangents are ``dwy[k, p, a] = sum_{q, b} wx[k, q, b] D`` and ``dwx[k, q, b] =
    sum_{p, a} wy[k, p, a] D``.  D is built one tap at a time, each a gather fused into
    its reduction over the channels, so no gathered tap is ever stored whole.
    """

    layout: _Taps

    def __call__(self, t, ct, x, weights, consts):
        (wy_table, wx_table), (image, ry_table, rx_table, column_chunks) = weights, consts
        cy, cx = self.layout.chunk
        i, j = t // column_chunks, t % column_chunks
        (ry, wy), (rx, wx) = _chunk((ry_table, wy_table), i, cy), _chunk((rx_table, wx_table), j, cx)

        def tap(step, d):
            a, b = step // cx, step % cx
            rows = jax.lax.dynamic_index_in_dim(ry, a, 2, keepdims=False)
            cols = jax.lax.dynamic_index_in_dim(rx, b, 2, keepdims=False)
            value = jnp.sum(ct * x[_bin_image(image), rows[:, :, None], cols[:, None, :]], axis=-1)
            return jax.lax.dynamic_update_index_in_dim(d, value, step, 3)

        k, out_h, out_w, _ = ct.shape
        d = jax.lax.fori_loop(0, cy * cx, tap, zeros_like_varying((k, out_h, out_w, cy * cx), ct.dtype, ct, x))
        d = d.reshape(k, out_h, out_w, cy, cx)
        dwy = jnp.einsum("kpqab,kqb->kpa", d, wx)
        dwx = jnp.einsum("kpqab,kpa->kqb", d, wy)
        return _place(dwy, wy_table, i * cy), _place(dwx, wx_table, j * cx)


def _place(chunk: jax.Array, table: jax.Array, start: jax.Array) -> jax.Array:
    """A table-shaped array of zeros holding chunk at taps start .. start + size - 1."""
    if chunk.shape == table.shape:
        return chunk
    return jax.lax.dynamic_update_slice_in_dim(jnp.zeros_like(table), chunk, start, axis=2)


def _scatter(ct, image, ty, tx, shapes):
    (ry, wy), (rx, wx) = ty, tx
    k, out_h, out_w, c = ct.shape
    if k == 0:
        return jnp.zeros(shapes.shape, shapes.dtype)
    per_box = out_h * out_w * rx.shape[2] * c * ct.dtype.itemsize
    chunk = max(1, SCATTER_BYTES // max(per_box, 1))
    if isinstance(k, int):  # a symbolic K (jax.export) keeps the budget's chunk
        chunk = min(k, chunk)
    n_chunks = -(-k // chunk)
    pad = n_chunks * chunk - k

    def padded(a):
        return jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)).reshape((n_chunks, chunk) + a.shape[1:])

    parts = [padded(a) for a in (ct, image, ry, wy, rx, wx)]

    def scatter(step, dx):
        i, a = step // ry.shape[2], step % ry.shape[2]
        g, img, rows, w_rows, cols, w_cols = (jax.lax.dynamic_index_in_dim(p, i, 0, keepdims=False) for p in parts)
        row = jax.lax.dynamic_index_in_dim(rows, a, 2, keepdims=False)
        w_row = jax.lax.dynamic_index_in_dim(w_rows, a, 2, keepdims=False)
        update = w_row[:, :, None, None, None] * w_cols[:, None, :, :, None] * g[:, :, :, None, :]
        return dx.at[_bin_image(img)[..., None], row[:, :, None, None], cols[:, None, :, :]].add(update)

    dx = zeros_like_varying(shapes.shape, shapes.dtype, ct, wy, wx)
    return jax.lax.fori_loop(0, n_chunks * ry.shape[2], scatter, dx)


def avg_pool(x: jax.Array, boxes: jax.Array, image: jax.Array, in_range: jax.Array, spec: RoIAlignSpec) -> jax.Array:
    """avg RoIAlign (K, out_h, out_w, C) of x (N, H, W, C) at finite boxes (K, 4), in x's dtype.

    ``image`` (K,) must lie in [0, N); boxes with ``in_range`` False read it with zero
    weights.  Linear in x, differentiable in the boxes, under every transformation.
    """
    _, h, w, _ = x.shape
    ty, tx, count, column_chunks = tap_tables(boxes, spec, h, w)
    return sum_tap_tables(x, image, in_range, ty, tx, count, column_chunks, spec)


def tap_tables(boxes: jax.Array, spec: RoIAlignSpec, height: int, width: int):
    """((ry, wy), (rx, wx), number of terms, column chunks per row chunk) of (K, 4) boxes on a map of
    height x width: RoIAlign's per-axis taps as :func:`sum_tap_tables` reads them."""
    return _Taps(spec, height, width).tables(boxes)


def table_chunk(spec: RoIAlignSpec, height: int, width: int) -> tuple[int, int]:
    """(row taps, column taps) that one term of :func:`sum_tap_tables` reads, for spec's layout."""
    return _Taps(spec, height, width).chunk


def sum_tap_tables(
    x: jax.Array,
    image: jax.Array,
    in_range: jax.Array,
    ty: tuple[jax.Array, jax.Array],
    tx: tuple[jax.Array, jax.Array],
    count: jax.Array,
    column_chunks: jax.Array,
    spec: RoIAlignSpec,
) -> jax.Array:
    """(K, P, Q, C): the tap sum of per-axis tables ry, wy (K, P, T) and rx, wx (K, Q, T).

    Laid out as :func:`tap_tables` lays out RoIAlign's taps for ``spec`` (its fixed or
    adaptive chunking; ``count`` terms of one chunk of rows by one of columns, the
    column chunks innermost); any tables of that layout may be summed (the
    position-sensitive pools sum their own).  ``image`` (K,) (or (K, P, Q): one image per
    bin, as the position-sensitive pools read) must lie in [0, N); boxes with
    ``in_range`` (K,) False read it with zero weights.  Linear in x, differentiable in the
    weights, under every transformation.
    """
    _, h, w, _ = x.shape
    layout = _Taps(spec, h, w)
    (ry, wy), (rx, wx) = ty, tx
    wy = jnp.where(in_range[:, None, None], wy, 0.0)
    term = Term(_Read(layout), _Scatter(layout), _WeightsTranspose(layout))
    return loop_sum(term, count, x, (wy, wx), (image, ry, rx, column_chunks))
