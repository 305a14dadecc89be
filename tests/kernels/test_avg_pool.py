"""avg kernels of both backends against their reference (the dense contraction of their geometry)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax_roialign.kernels import avg_pool, avg_pool_mosaic, geometry
from jax_roialign.kernels.config import BlockSizes
from jax_roialign.kernels.target import Target

from jax_roialign.conventions import RoIAlignSpec
from tests import cases

N, H, W, C = 2, 9, 21, 5
SPEC = RoIAlignSpec((3, 5), 1.0, 0, True, "avg")
# 5 channels in blocks of 2 (one padded), 21 columns in tiles of 4, 9 rows in tiles of 4.
BLOCKS = BlockSizes(channels=2, tile_rows=4, tile_cols=4)
# Boxes wider and taller than a tile and than the map, thin ones, one wholly outside the map,
# and (last) one whose batch index lies outside [0, N).
BOXES = [
    [0.5, 0.5, 20.5, 8.5],
    [-9.0, -4.0, 33.0, 15.0],
    [3.2, 1.1, 4.0, 7.9],
    [6.7, 2.2, 18.4, 2.6],
    [30.0, 1.0, 40.0, 5.0],
    [2.0, 2.0, 12.0, 6.0],
]
BATCH = [0, 1, 1, 0, 1, 2]


def _problem():
    x = jnp.asarray(cases.random_features(0, (N, H, W, C)))
    return x, jnp.asarray(BOXES, jnp.float64), jnp.asarray(BATCH, jnp.int32)


@pytest.mark.usefixtures("x64")
def test_reference_is_the_dense_contraction_of_separable_weights():
    """forward_reference against a box-by-box NumPy Wy @ X @ Wx^T; backward_reference is its transpose."""
    x, boxes, batch = _problem()
    geo = jax.jit(geometry.avg_geometry, static_argnums=(2, 3))(boxes, batch, x.shape, SPEC)
    got = avg_pool.forward_reference(x, batch, geo)
    wy, wx, xs = np.asarray(geo.wy), np.asarray(geo.wx), np.asarray(x)
    for k, b in enumerate(BATCH):
        want = np.einsum("ph,hwc,qw->pqc", wy[k], xs[min(b, N - 1)], wx[k]) if b < N else 0.0
        np.testing.assert_allclose(np.asarray(got[k]), want, rtol=1e-12, atol=1e-12)
    g = jnp.asarray(np.random.default_rng(1).standard_normal(got.shape))
    dx = avg_pool.backward_reference(g, batch, geo, x.shape)
    np.testing.assert_allclose(float(jnp.vdot(dx, x)), float(jnp.vdot(g, got)), rtol=1e-12)


@pytest.mark.parametrize("backend,max_boxes", [("triton", None), ("mosaic", None), ("mosaic", 4)])
def test_kernels_match_the_reference(backend, max_boxes):
    """Both backends' kernels (interpreted, float32) against the reference: multi-tile boxes, padding, a bad index.

    max_boxes=4: the Mosaic kernels in calls of at most 4 boxes (the backward pass
    continuing the previous call's sums), as for more boxes than one call's SMEM holds.
    """
    x, boxes, batch = (a.astype(jnp.float32) if a.dtype == jnp.float64 else a for a in _problem())
    geo = jax.jit(geometry.avg_geometry, static_argnums=(2, 3))(boxes, batch, x.shape, SPEC)
    target = Target(backend, interpret=True)
    kwargs = {} if max_boxes is None else {"max_boxes": max_boxes}
    module = avg_pool_mosaic if backend == "mosaic" else avg_pool
    got = module.forward(x, batch, geo, SPEC.output_size, BLOCKS, target, **kwargs)
    want = avg_pool.forward_reference(x, batch, geo)
    tile_count = geometry.tile_span(geo.col_start, geo.col_count, BLOCKS.tile_cols)[1]
    assert np.asarray(tile_count).max() > 1 and np.asarray(geo.row_count).max() == H  # multi-tile boxes
    chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-5)
    assert not np.any(np.asarray(got[-2:]))  # outside the map; batch index out of range
    g = jnp.asarray(np.random.default_rng(1).standard_normal(want.shape), jnp.float32)
    ranges = geometry.image_ranges(batch, N)
    dx = module.backward(g, ranges, geo, x.shape, BLOCKS, target, **kwargs)
    chex.assert_trees_all_close(dx, avg_pool.backward_reference(g, batch, geo, x.shape), rtol=1e-5, atol=1e-5)
