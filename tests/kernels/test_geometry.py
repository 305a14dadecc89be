"""The per-box geometry the kernels read, against the NumPy reference and the shared sampling code."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax_roialign.kernels import geometry

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import sampling
from jax_roialign.core.bins import box_bins
from tests import reference

LENGTH, POOLED = 20, 3
# Jitted: compiled once, these run far faster than op by op.
axis_weights = jax.jit(geometry.axis_weights, static_argnums=(1, 2, 3))
avg_geometry = jax.jit(geometry.avg_geometry, static_argnums=(2, 3))
# (y1, y2) edge pairs: interior, straddling either end, tiny, zero-size, far larger than the axis.
SPANS = [(2.3, 7.9), (-1.7, 4.2), (14.6, 21.3), (-0.5, 0.4), (5.0, 5.0), (-30.0, 52.0), (3.1, 13.4)]


def _boxes(spans) -> np.ndarray:
    """(K, 4) boxes with the given y spans and a fixed x span [0.2, 0.4]."""
    return np.asarray([[0.2, lo, 0.4, hi] for lo, hi in spans])


def _sample_by_sample_row_weights(spans, sampling_ratio: int, aligned: bool) -> np.ndarray:
    """(K, POOLED, LENGTH) row weights from the NumPy transcription of conventions.md.

    The map has two identical columns whose channel h is the indicator of row h, so a
    read's x weights sum to one and channel h of the output is the weight on row h.
    """
    eye = np.repeat(np.eye(LENGTH)[None, :, None, :], 2, axis=2)  # (1, L, 2, L)
    boxes = _boxes(spans)
    batch = np.zeros(len(boxes), np.int32)
    out = reference.roi_align(eye, boxes, batch, (POOLED, 1), 1.0, sampling_ratio, aligned, "avg")
    return out[:, :, 0, :]


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("sampling_ratio", [0, 1, 3])
@pytest.mark.parametrize("aligned", [True, False])
def test_axis_weights_match_sample_by_sample(sampling_ratio, aligned):
    spec = RoIAlignSpec((POOLED, 1), 1.0, sampling_ratio, aligned)
    by, _ = box_bins(jnp.asarray(_boxes(SPANS)), spec)
    got = axis_weights(by, POOLED, LENGTH, sampling_ratio)
    want = _sample_by_sample_row_weights(SPANS, sampling_ratio, aligned)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-12)


def test_used_span():
    weights = np.zeros((3, 2, 10))
    weights[0, 1, 3] = 0.5
    weights[0, 0, 6] = -0.25
    weights[2, :, :] = 1.0
    first, count = geometry.used_span(jnp.asarray(weights))
    np.testing.assert_array_equal(first, [3, 0, 0])
    np.testing.assert_array_equal(count, [4, 0, 10])


def test_avg_geometry_holds_exactly_the_weights_and_spans():
    """Weights equal axis_weights (zero for a batch index outside [0, N)); spans cover every nonzero weight."""
    spec = RoIAlignSpec((3, 5), 0.5, 0, True)
    shape = (2, 13, 22, 1)
    # Interior, straddling, larger than the map, wholly outside (reads nothing); the last two
    # have batch indices outside [0, N).
    boxes = [[3.1, 5.2, 17.9, 14.4], [-6.0, 20.0, 9.0, 31.0], [-20.0, -9.0, 60.0, 40.0], [50.0, 2.0, 70.0, 9.0]]
    boxes = jnp.asarray(boxes + boxes[:2], jnp.float32)
    batch = jnp.asarray([0, 1, 1, 0, 2, -1], jnp.int32)
    geo = avg_geometry(boxes, batch, shape, spec)
    by, bx = box_bins(boxes, spec)
    wy, wx = axis_weights(by, 3, 13, 0), axis_weights(bx, 5, 22, 0)
    chex.assert_shape([geo.wy, geo.wx], [(6, 3, 13), (6, 5, 22)])
    for k in range(4):  # separate programs: XLA may fuse the weight arithmetic differently (rounding)
        chex.assert_trees_all_close(geo.wy[k], wy[k], rtol=1e-6, atol=1e-7)
        chex.assert_trees_all_close(geo.wx[k], wx[k], rtol=1e-6, atol=1e-7)
    for k in range(3):
        rows = np.flatnonzero(np.any(np.asarray(wy[k]) != 0, axis=0))
        cols = np.flatnonzero(np.any(np.asarray(wx[k]) != 0, axis=0))
        assert (geo.row_start[k], geo.row_count[k]) == (rows.min(), rows.max() - rows.min() + 1)
        assert (geo.col_start[k], geo.col_count[k]) == (cols.min(), cols.max() - cols.min() + 1)
    assert not np.any(np.asarray(wx[3])) and not np.any(np.asarray(geo.wy[4:])) and not np.any(np.asarray(geo.wx[4:]))
    np.testing.assert_array_equal(geo.col_count[3:], 0)
    np.testing.assert_array_equal(geo.row_count[4:], 0)


def test_tiles_and_tile_span():
    """Tile t, entry [p, i] is the weight of position t * tile + i; padding holds zeros; spans cover the tiles read."""
    weights = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 3, 10)), jnp.float32)
    cut = geometry.tiles(weights, 4, 4)
    chex.assert_shape(cut, (2, 3, 4, 4))
    flat = jnp.transpose(cut, (0, 2, 1, 3)).reshape(2, 4, 12)
    chex.assert_trees_all_equal(flat[:, :3, :10], weights)
    assert not np.any(np.asarray(flat[:, 3:])) and not np.any(np.asarray(flat[:, :, 10:]))
    first, count = geometry.tile_span(jnp.asarray([0, 3, 4, 9, 5]), jnp.asarray([10, 2, 4, 1, 0]), 4)
    np.testing.assert_array_equal(first, [0, 0, 1, 2, 1])
    np.testing.assert_array_equal(count, [3, 2, 1, 1, 0])


def test_max_geometry():
    spec = RoIAlignSpec((2, 3), 1.0, 0, True, "max")
    boxes = jnp.asarray([[1.0, 2.0, 9.5, 7.0], [3.0, 3.0, 3.0, 3.0], [0.0, 0.0, 4.0, 4.0]], jnp.float32)
    geo = geometry.max_geometry(boxes, jnp.asarray([1, 0, 2], jnp.int32), 2, spec)
    by, bx = box_bins(boxes, spec)
    chex.assert_trees_all_equal(geo.y_bins[:, :2], jnp.stack([by.start, by.bin_size], 1))
    chex.assert_trees_all_equal(geo.x_bins[:, 2], jnp.maximum(bx.grid, 1.0))
    # Grids ceil(5 / 2) x ceil(8.5 / 3) = 3 x 3; the zero-size box has none; box 2's image is out of range.
    np.testing.assert_array_equal(geo.n_samples, [9, 0, 0])
    np.testing.assert_array_equal(geo.grid_x, [3, 1, 2])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16])
def test_sample_coordinate_is_the_shared_arithmetic_bitwise(dtype):
    """Eagerly and under jit, the kernels' coordinate equals sampling.sample_coordinate to the bit."""
    rng = np.random.default_rng(0)
    grid = jnp.asarray(rng.integers(1, 9, 4096), dtype)
    bins = sampling.AxisBins(
        jnp.asarray(rng.uniform(-5, 60, 4096), dtype), jnp.asarray(rng.uniform(-1, 9, 4096), dtype), grid
    )
    p = jnp.asarray(rng.integers(0, 7, 4096), dtype)
    i = jnp.floor(jnp.asarray(rng.uniform(0, 1, 4096), dtype) * grid)

    def ours(bins, p, i):
        return geometry.sample_coordinate(*bins, p, i)

    chex.assert_trees_all_equal(ours(bins, p, i), sampling.sample_coordinate(bins, p, i))
    chex.assert_trees_all_equal(jax.jit(ours)(bins, p, i), jax.jit(sampling.sample_coordinate)(bins, p, i))


def test_image_ranges_list_each_image_in_box_order():
    batch = jnp.asarray([1, -1, 0, 1, 3, 0, 2], jnp.int32)
    ranges = geometry.image_ranges(batch, 3)
    order, start = np.asarray(ranges.order), np.asarray(ranges.start)
    assert [list(order[start[n] : start[n + 1]]) for n in range(3)] == [[2, 5], [0, 3], [6]]
