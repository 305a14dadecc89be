"""The per-axis sampling arithmetic: windowed adaptive weights equal the dense ones."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_roialign.core import sampling
from tests import reference

LENGTH, POOLED = 20, 3


def _bins(lo: float, hi: float, aligned: bool) -> sampling.AxisBins:
    return sampling.axis_bins(
        jnp.asarray(lo), jnp.asarray(hi), spatial_scale=1.0, aligned=aligned, pooled=POOLED, sampling_ratio=0
    )


def _dense(rows: jax.Array, weights: jax.Array) -> np.ndarray:
    out = np.zeros((POOLED, LENGTH))
    for p in range(POOLED):
        np.add.at(out[p], np.asarray(rows[p]), np.asarray(weights[p]))
    return out


def _sample_by_sample(lo: float, hi: float, aligned: bool) -> np.ndarray:
    """Row weights from the NumPy transcription: a one-column map per row, read with x fixed."""
    eye = np.eye(LENGTH)[None, :, :, None].transpose(0, 1, 3, 2)  # (1, L, 1, L): channel h is row h
    boxes = np.array([[0.2, lo, 0.4, hi]])
    out = reference.roi_align(eye, boxes, [0], (POOLED, 1), 1.0, 0, aligned, "avg")
    return out[0, :, 0, :]


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("window", [4, 8, 16, LENGTH])
@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize(
    "lo,hi", [(2.3, 7.9), (-1.7, 4.2), (14.6, 21.3), (-0.5, 0.4), (5.0, 5.0), (-30.0, 52.0), (0.5, 19.5), (3.1, 13.4)]
)
def test_windowed_weights_equal_sample_by_sample(window, aligned, lo, hi):
    bins = _bins(lo, hi, aligned)
    extent = float(sampling.adaptive_row_extent(bins, POOLED, LENGTH))
    rows, weights = sampling.adaptive_grid_taps(bins, POOLED, LENGTH, window)
    want = _sample_by_sample(lo, hi, aligned)
    if extent <= window:
        np.testing.assert_allclose(_dense(rows, weights), want, rtol=1e-12, atol=1e-12)
    else:
        # The window cannot hold the bin; the dense form (window = length) always can.
        assert window < LENGTH
    # The extent is tight: every row outside the bins' read span has zero weight.
    span = [np.flatnonzero(want[p]) for p in range(POOLED)]
    assert extent >= max((s.max() - s.min() + 1 for s in span if s.size), default=0)


def test_fixed_grid_taps_are_the_bilinear_neighbours():
    bins = sampling.axis_bins(
        jnp.asarray(2.3), jnp.asarray(7.9), spatial_scale=1.0, aligned=True, pooled=2, sampling_ratio=2
    )
    rows, weights = sampling.fixed_grid_taps(bins, 2, 2, LENGTH)
    assert rows.shape == weights.shape == (2, 4)
    np.testing.assert_allclose(np.asarray(weights).sum(axis=1), 1.0, rtol=1e-6)
