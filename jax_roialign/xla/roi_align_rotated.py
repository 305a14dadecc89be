"""Rotated RoIAlign (Detectron2 ROIAlignRotated, mmcv roi_align_rotated) in plain jax.numpy.

Inputs are canonical: features (N, H, W, C), boxes (K, 5) [cx, cy, w, h, angle] in
input-image coordinates, batch_indices (K,) int32.  The samples of a rotated bin do not
share rows or columns, so each sample is read on its own: four gathers weighted by its
bilinear weights (``docs/conventions.md`` section 5).  The samples are summed by
``loop_sum``, one sample of every bin per step: the trip count is the largest sample
count among the boxes (data-dependent for an adaptive grid, exact with no cap), and
memory is independent of it (``docs/performance.md`` compares it with an unrolled sum).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from jax_roialign.conventions import RotatedSpec
from jax_roialign.core import guards, rotated, sampling
from jax_roialign.core.bins import compute_dtype
from jax_roialign.core.loop_sum import Term, loop_sum


def roi_align_rotated(features: jax.Array, boxes: jax.Array, batch_indices: jax.Array, spec: RotatedSpec) -> jax.Array:
    """Rotated RoIAlign of canonical inputs: (K, out_h, out_w, C) in features' dtype.

    Contract, with ``value(k, y, x)`` RoIAlign's bilinear read of image batch_indices[k]
    (zero outside [-1, H] x [-1, W]) and ``(y, x)(p, q, iy, ix)`` the rotated sample
    points of ``core.rotated.sample_point``::

        out[k, p, q] = sum_{iy < gh, ix < gw} value(k, (y, x)(p, q, iy, ix)) / max(gh * gw, 1)

    Accumulation is float32 (float64 for float64 features).  A box whose batch index
    lies outside [0, N) yields zeros; one with a non-finite coordinate yields NaN and
    passes no gradient; a grid <= 0 along either axis (adaptive grid of a box of zero or
    negative size) has no samples and yields 0.
    """
    cdt = compute_dtype(features.dtype)
    x = features.astype(cdt)
    boxes, batch_indices, finite = guards.isolate_nonfinite_boxes(boxes.astype(cdt), batch_indices)
    _, _, _, c = x.shape
    out_h, out_w = spec.output_size
    # Per box: the output, and in the backward pass one scatter update of the output's size.
    per_box = 4 * out_h * out_w * c * x.dtype.itemsize
    out = guards.map_box_chunks(functools.partial(_pool, x, spec=spec), boxes, batch_indices, per_box)
    return guards.mark_nonfinite(out, finite).astype(features.dtype)


def _pool(x: jax.Array, boxes: jax.Array, batch_indices: jax.Array, spec: RotatedSpec) -> jax.Array:
    """The sum over every bin's samples, for one chunk of finite boxes."""
    n, _, _, _ = x.shape
    out_h, out_w = spec.output_size
    bins = rotated.rotated_bins(boxes, spec)
    count = rotated.samples_per_bin(bins)
    in_range, image = guards.images_in_range(batch_indices, n)
    # The mean's divisor max(gh * gw, 1), folded into every sample's weight; zero for a bad index.
    scale = jnp.where(in_range, 1.0 / jnp.maximum(count, 1).astype(x.dtype), 0.0)
    term = Term(SampleTerm(out_h, out_w))
    params = rotated.expand(rotated.with_dummy_grid(bins), 3)
    # Trip count: the largest number of samples of any bin (a fixed grid's sampling_ratio ** 2).
    return loop_sum(term, jnp.max(count, initial=0), x, params, (count, image, scale))


@dataclasses.dataclass(frozen=True)
class SampleTerm:
    """Term t of the sum: (K, out_h, out_w, C), the weighted read of the t-th sample (row-major) of every bin.

    Linear in the features; differentiable in the bins (params); consts (count, image,
    scale), each (K,): samples per bin, image index (in range) and weight factor.  Zero
    for bins with fewer than t + 1 samples.
    """

    out_h: int
    out_w: int

    def __call__(self, t: jax.Array, x: jax.Array, bins: rotated.RotatedBins, consts) -> jax.Array:
        count, image, scale = consts
        _, h, w, _ = x.shape
        iy, ix = rotated.flat_sample(bins, t)
        p = jnp.arange(self.out_h, dtype=iy.dtype)[None, :, None]
        q = jnp.arange(self.out_w, dtype=iy.dtype)[None, None, :]
        y, x_ = rotated.sample_point(bins, p, q, iy, ix)
        ty = sampling.bilinear_taps(y, h)
        tx = sampling.bilinear_taps(x_, w)
        weight = jnp.where(t < count, scale, 0.0)[:, None, None]
        b = image[:, None, None]
        total = None
        for rows, wy in ((ty.lo, ty.w_lo), (ty.hi, ty.w_hi)):
            for cols, wx in ((tx.lo, tx.w_lo), (tx.hi, tx.w_hi)):
                read = (wy * wx * weight)[..., None] * x[b, rows, cols]
                total = read if total is None else total + read
        return total
