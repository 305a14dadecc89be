"""Position-sensitive RoIAlign and RoIPool (R-FCN; torchvision ps_roi_align / ps_roi_pool) in plain jax.numpy.

Inputs are canonical: features (N, H, W, C), boxes (K, 4) [x1, y1, x2, y2], batch_indices
(K,) int32.  Bin (p, q) of output channel c reads input channel ``(c * out_h + p) * out_w
+ q`` (``docs/conventions.md`` section 6).  After one rearrangement of the channels
(``core.position_sensitive.position_maps``), every bin of every box is a one-bin pool of
its own position map, summed from per-axis tap tables by the avg RoIAlign's tap sum
(``xla/tap_sum.py``, on ``core.loop_sum``): RoIAlign's own tables for ps_roi_align,
the uniform tables of integer bins for ps_roi_pool.  Both are exact for bins of any
size, linear in the features, and work under every JAX transformation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import guards, position_sensitive
from jax_roialign.core.bins import compute_dtype
from jax_roialign.xla import tap_sum


def ps_roi_align(features: jax.Array, boxes: jax.Array, batch_indices: jax.Array, spec: RoIAlignSpec) -> jax.Array:
    """Position-sensitive RoIAlign of canonical inputs: (K, out_h, out_w, C / (out_h * out_w)).

    spec must be avg and is used as given (torchvision's op is ``aligned=True``).  Bin
    (p, q) of output channel c is ``roi_align(features, boxes, spec)`` of bin (p, q) on
    input channel ``(c * out_h + p) * out_w + q``: the same samples, weights and edge
    rules (conventions.md section 1), so a bin without samples (adaptive grid of a box of
    zero size) yields 0.  Accumulation is float32 (float64 for float64 features).  A box
    whose batch index lies outside [0, N) yields zeros; one with a non-finite coordinate
    yields NaN and passes no gradient.  Differentiable in the features and the boxes.
    """
    cdt = compute_dtype(features.dtype)
    boxes, batch_indices, finite = guards.isolate_nonfinite_boxes(boxes.astype(cdt), batch_indices)
    x = features.astype(cdt)
    _, h, w, _ = x.shape
    ty, tx, count, column_chunks = tap_sum.tap_tables(boxes, spec, h, w)
    out = _pool_tables(x, batch_indices, spec, ty, tx, count, column_chunks)
    return guards.mark_nonfinite(out, finite).astype(features.dtype)


def ps_roi_pool(
    features: jax.Array,
    boxes: jax.Array,
    batch_indices: jax.Array,
    output_size: tuple[int, int],
    spatial_scale: float,
) -> jax.Array:
    """Position-sensitive RoIPool of canonical inputs: (K, out_h, out_w, C / (out_h * out_w)).

    Bin (p, q) of output channel c is the mean of input channel ``(c * out_h + p) *
    out_w + q`` over the cells of ``core.position_sensitive.pool_bin_edges`` (torchvision's
    forward pass: corners rounded half away from zero, bins clipped to [0, H - 1] x
    [0, W - 1]); an empty bin yields 0.  Accumulation is float32 (float64 for float64).
    The gradient w.r.t. the features is the derivative of this forward pass (1 / area on
    each cell of the bin); the boxes get none.  Bad batch indices and non-finite boxes as
    in :func:`ps_roi_align`.
    """
    cdt = compute_dtype(features.dtype)
    boxes = jax.lax.stop_gradient(boxes.astype(cdt))
    boxes, batch_indices, finite = guards.isolate_nonfinite_boxes(boxes, batch_indices)
    x = features.astype(cdt)
    _, h, w, _ = x.shape
    out_h, out_w = output_size
    spec = RoIAlignSpec(output_size, spatial_scale, 0)  # the adaptive table layout: chunks of rows x columns
    chunk_y, chunk_x = tap_sum.table_chunk(spec, h, w)
    edges = position_sensitive.pool_bin_edges
    y0, y1 = edges(boxes[:, 1], boxes[:, 3], spatial_scale, out_h, h)
    x0, x1 = edges(boxes[:, 0], boxes[:, 2], spatial_scale, out_w, w)
    ty = position_sensitive.mean_table(y0, y1, h, chunk_y, cdt)
    tx = position_sensitive.mean_table(x0, x1, w, chunk_x, cdt)
    row_chunks = -(-jnp.max(y1 - y0, initial=0) // chunk_y)
    column_chunks = jnp.maximum(-(-jnp.max(x1 - x0, initial=0) // chunk_x), 1)
    out = _pool_tables(x, batch_indices, spec, ty, tx, row_chunks * column_chunks, column_chunks)
    return guards.mark_nonfinite(out, finite).astype(features.dtype)


def _pool_tables(x, batch_indices, spec, ty, tx, count, column_chunks) -> jax.Array:
    """(K, out_h, out_w, C_out): bin (p, q) of box k as the one-bin tap sum of its position map,
    with the rows of table ty[k, p] and the columns of tx[k, q]."""
    maps = position_sensitive.position_maps(x, spec.output_size)
    in_range, image = guards.images_in_range(batch_indices, x.shape[0])
    images = position_sensitive.bin_maps(image, spec.output_size)
    return tap_sum.sum_tap_tables(maps, images, in_range, ty, tx, count, column_chunks, spec)
