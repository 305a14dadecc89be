"""The per-axis sampling arithmetic: adaptive window weights equal the sample-by-sample ones."""

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


CASES = [(2.3, 7.9), (-1.7, 4.2), (14.6, 21.3), (-0.5, 0.4), (5.0, 5.0), (-30.0, 52.0), (0.5, 19.5), (3.1, 13.4)]


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("aligned", [True, False])
def test_windows_from_each_bins_first_row_equal_sample_by_sample(aligned):
    """The XLA path's adaptive tables: from the first row each bin reads, its rows_read count
    of rows (and zeros beyond, the rows past the map clamped), equal the dense weights."""
    for lo, hi in CASES:
        bins = _bins(lo, hi, aligned)
        first, count = sampling.rows_read(bins, POOLED, LENGTH)
        window = int(jnp.max(count)) + 3
        rows, weights = sampling.adaptive_grid_taps(bins, POOLED, LENGTH, window, start=first)
        want = _sample_by_sample(lo, hi, aligned)
        np.testing.assert_allclose(_dense(rows, weights), want, rtol=1e-12, atol=1e-12, err_msg=f"{lo}, {hi}")
        # Every bin's weights sit in its first count rows; count is tight.
        offsets = np.arange(window)[None, :]
        assert not np.any(np.asarray(weights)[offsets >= np.asarray(count)[:, None]])
        for p in range(POOLED):
            used = np.flatnonzero(want[p])
            if used.size:
                assert used.min() >= first[p] and used.max() - used.min() + 1 <= count[p]


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("aligned", [True, False])
def test_default_window_covering_the_bins_equals_sample_by_sample(aligned):
    for lo, hi in CASES:
        bins = _bins(lo, hi, aligned)
        rows, weights = sampling.adaptive_grid_taps(bins, POOLED, LENGTH, LENGTH)
        np.testing.assert_allclose(_dense(rows, weights), _sample_by_sample(lo, hi, aligned), rtol=1e-12, atol=1e-12)


def test_fixed_grid_taps_are_the_bilinear_neighbours():
    bins = sampling.axis_bins(
        jnp.asarray(2.3), jnp.asarray(7.9), spatial_scale=1.0, aligned=True, pooled=2, sampling_ratio=2
    )
    rows, weights = sampling.fixed_grid_taps(bins, 2, 2, LENGTH)
    assert rows.shape == weights.shape == (2, 4)
    np.testing.assert_allclose(np.asarray(weights).sum(axis=1), 1.0, rtol=1e-6)


def _fixed_taps(lo: float, hi: float, aligned: bool, grid: int):
    bins = sampling.axis_bins(
        jnp.asarray(lo), jnp.asarray(hi), spatial_scale=1.0, aligned=aligned, pooled=POOLED, sampling_ratio=grid
    )
    return sampling.fixed_grid_taps(bins, POOLED, grid, LENGTH)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("grid", [1, 2, 3])
@pytest.mark.parametrize("aligned", [True, False])
def test_merged_taps_read_the_same_rows_with_the_same_weights(aligned, grid):
    """Each bin's merged taps are the same dense row weights, on at most T rows (count),
    with weight zero past the count; bins spanning more than T rows keep their taps."""
    for lo, hi in CASES + [(2.0, 2.2), (0.0, 60.0)]:
        rows, weights = _fixed_taps(lo, hi, aligned, grid)
        merged_rows, merged, count = sampling.merge_equal_taps(rows, weights, LENGTH)
        t = rows.shape[-1]
        np.testing.assert_allclose(_dense(merged_rows, merged), _dense(rows, weights), rtol=1e-12, atol=1e-12)
        used = np.arange(t)[None, :] < np.asarray(count)[:, None]
        np.testing.assert_array_equal(_dense(merged_rows, np.where(used, merged, 0)), _dense(merged_rows, merged))
        assert np.all((merged_rows >= 0) & (merged_rows < LENGTH))
        span = np.asarray(rows).max(-1) - np.asarray(rows).min(-1) + 1
        np.testing.assert_array_equal(count, np.where(span <= t, span, t))


def test_merged_taps_fewer_on_small_bins_and_differentiable():
    """Two samples between the same two rows share them: 4 taps become 2; the gradient of
    a read through the merged weights equals the one through the original taps."""
    rows, weights = _fixed_taps(3.1, 3.4, True, 2)
    _, _, count = sampling.merge_equal_taps(rows, weights, LENGTH)
    np.testing.assert_array_equal(count, [2, 2, 2])
    x = jnp.linspace(0.0, 3.0, LENGTH) ** 2

    def read(hi, merge):
        rows, weights = _fixed_taps(1.3, hi, True, 2)
        if merge:
            rows, weights, count = sampling.merge_equal_taps(rows, weights, LENGTH)
            weights = jnp.where(jnp.arange(rows.shape[-1]) < count[:, None], weights, 0)
        return jnp.sum(weights * x[rows])

    for hi in (2.0, 4.7, 9.9):
        np.testing.assert_allclose(jax.grad(read)(hi, True), jax.grad(read)(hi, False), rtol=1e-5)
