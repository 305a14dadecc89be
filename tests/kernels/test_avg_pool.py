"""avg kernels against the dense contraction of their own geometry: windows, tiles, padding, transposition."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax_roialign.kernels import avg_pool, geometry
from jax_roialign.kernels.config import BlockSizes
from jax_roialign.kernels.target import Target

from jax_roialign.conventions import RoIAlignSpec
from tests import cases

N, H, W, C = 2, 9, 21, 5
SPEC = RoIAlignSpec((3, 5), 1.0, 0, True, "avg")
# 5 channels in blocks of 2 (one padded), 21 columns in tiles of 4, 9 rows in tiles of 4.
BLOCKS = BlockSizes(channels=2, tile_rows=4, tile_cols=4)
TARGET = Target("triton", interpret=True)
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


def _dense_form(x, batch, geo):
    """out[k] = Wy[k] @ X[b_k] @ Wx[k]^T with the geometry's weights, zero for an index outside [0, N)."""
    out_h, out_w = SPEC.output_size
    wy = geo.wy[:, :out_h, :H]
    wx = jnp.transpose(geo.wx_tiles, (0, 2, 1, 3)).reshape(len(BOXES), geo.wx_tiles.shape[2], -1)[:, :out_w, :W]
    pick = (batch[:, None] == jnp.arange(N)).astype(x.dtype)
    return jnp.einsum("kph,kn,nhwc,kqw->kpqc", wy, pick, x, wx, precision=jax.lax.Precision.HIGHEST)


@pytest.mark.usefixtures("x64")
def test_forward_and_backward_match_the_dense_form():
    x, boxes, batch = _problem()
    geo = jax.jit(geometry.avg_geometry, static_argnums=(2, 3, 4, 5))(
        boxes, batch, x.shape, SPEC, BLOCKS.tile_rows, BLOCKS.tile_cols
    )
    got = avg_pool.forward(x, batch, geo, SPEC.output_size, BLOCKS, TARGET)
    want, pullback = jax.vjp(lambda x: _dense_form(x, batch, geo), x)
    assert np.asarray(geo.tile_count).max() > 1 and np.asarray(geo.row_count).max() == H  # multi-tile boxes
    chex.assert_trees_all_close(got, want, rtol=1e-12, atol=1e-12)
    assert not np.any(np.asarray(got[-2:]))  # outside the map; batch index out of range
    g = jnp.asarray(np.random.default_rng(1).standard_normal(want.shape))
    dx = avg_pool.backward(g, geometry.image_ranges(batch, N), geo, x.shape, BLOCKS, TARGET)
    chex.assert_trees_all_close(dx, pullback(g)[0], rtol=1e-12, atol=1e-12)
