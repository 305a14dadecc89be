"""max / corner_max kernels of both backends against their reference; first-argmax semantics; corner_max's ties."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax_roialign.kernels import geometry, max_pool, max_pool_mosaic
from jax_roialign.kernels.config import BlockSizes
from jax_roialign.kernels.target import Target

from jax_roialign import xla
from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import corners
from tests import cases, reference

BLOCKS = BlockSizes(channels=2, tile_rows=4, tile_cols=4)


@pytest.mark.parametrize(
    "terms",
    [
        [3.0, 1.0, 2.0, 0.0],  # a unique largest term
        [1.0, 1.0, 0.0, 0.0],  # a tie at the first max
        [0.0, 0.0, 0.0, 0.0],  # all tied: shares 1/8, 1/8, 1/4, 1/2
        [-1.0, 2.0, 2.0, 2.0],
        [-0.0, 0.0, -3.0, 0.0],  # signed zeros compare equal
    ],
)
def test_corner_shares_roundtrip_jax_max_rule(terms):
    """The encoded shares are the derivatives of the corner_max combination (jnp.maximum splits ties)."""
    terms = [jnp.asarray([t], jnp.float32) for t in terms]
    _, pullback = jax.vjp(lambda *t: corners.combine_terms(list(t), corner=True), *terms)
    want = pullback(jnp.ones((1,), jnp.float32))
    chex.assert_trees_all_equal(corners.decode_shares(corners.encode_shares(terms), jnp.float32), list(want))


def _sample_values(features, boxes, batch, spec, k, p, q):
    """(samples, C) values of bin (p, q) of box k in row-major sample order (NumPy, float64)."""
    off = 0.5 if spec.aligned else 0.0
    x1, y1, x2, y2 = np.asarray(boxes[k], np.float64) * spec.spatial_scale - off
    out_h, out_w = spec.output_size
    roi_h, roi_w = y2 - y1, x2 - x1
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    gh, gw = (int(np.ceil(roi_h / out_h)), int(np.ceil(roi_w / out_w)))
    values = []
    for iy in range(gh):
        for ix in range(gw):
            y = y1 + p * bin_h + (iy + 0.5) * bin_h / gh
            x = x1 + q * bin_w + (ix + 0.5) * bin_w / gw
            terms = reference.bilinear_terms(features[batch[k]], y, x)
            values.append(np.maximum.reduce(terms) if spec.mode == "corner_max" else np.sum(terms, axis=0))
    return np.asarray(values).reshape(gh * gw, -1)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("mode", ["max", "corner_max"])
def test_reference_keeps_the_first_argmax(mode):
    """out is the max over the bin's samples and arg the first (row-major) sample attaining it."""
    features = cases.random_features(2, (2, 7, 9, 3))
    boxes = np.asarray([[0.5, 0.3, 8.2, 6.1], [-3.0, -2.0, 12.0, 9.5], [2.2, 1.1, 5.9, 3.3]])
    batch = np.asarray([1, 0, 1], np.int32)
    spec = RoIAlignSpec((2, 3), 1.0, 0, True, mode)
    geo = geometry.max_geometry(jnp.asarray(boxes), jnp.asarray(batch), 2, spec)
    corner = mode == "corner_max"
    out, arg, code = max_pool.forward_reference(jnp.asarray(features), geo, spec.output_size, corner)
    assert (code is not None) == (mode == "corner_max")
    for k, p, q in np.ndindex(len(boxes), 2, 3):
        values = _sample_values(features, boxes, batch, spec, k, p, q)
        best = values.max(axis=0)
        np.testing.assert_allclose(np.asarray(out[k, p, q]), best, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(arg[k, p, q], np.argmax(values >= best - 1e-12, axis=0))


def _tied_problem(mode):
    """ReLU-like features (exact zeros) at integer sample positions (zero-weight corners): many ties.

    Also an adaptive-grid box, and a box whose batch index lies outside [0, N).
    """
    features = np.maximum(cases.random_features(3, (2, 6, 8, 4), "float32"), 0.0)
    x = jnp.asarray(features, jnp.float32)
    boxes = [
        [0.0, 0.0, 6.0, 4.0],
        [1.0, 2.0, 7.0, 5.0],
        [2.0, 0.0, 4.0, 6.0],
        [0.5, 0.2, 7.7, 5.9],
        [1.0, 1.0, 3.0, 3.0],
    ]
    boxes = jnp.asarray(boxes, jnp.float32)
    batch = jnp.asarray([0, 1, 1, 0, 2], jnp.int32)
    return x, boxes, batch, RoIAlignSpec((2, 2), 1.0, 1, False, mode)


@pytest.mark.parametrize("mode", ["max", "corner_max"])
@pytest.mark.parametrize("backend,max_boxes", [("triton", None), ("mosaic", None), ("mosaic", 2)])
def test_kernels_match_the_reference(mode, backend, max_boxes):
    """Both backends' kernels (interpreted) against the reference, bitwise.

    max_boxes=2: the Mosaic kernels in calls of at most 2 boxes (the backward pass
    continuing the previous call's sums), as for more boxes than one call's SMEM holds.
    """
    x, boxes, batch, spec = _tied_problem(mode)
    geo = geometry.max_geometry(boxes, batch, 2, spec)
    corner = mode == "corner_max"
    target = Target(backend, interpret=True)
    kwargs = {} if max_boxes is None else {"max_boxes": max_boxes}
    module = max_pool_mosaic if backend == "mosaic" else max_pool
    got = module.forward(x, geo, spec.output_size, corner, BLOCKS, target, **kwargs)
    want = max_pool.forward_reference(x, geo, spec.output_size, corner)
    chex.assert_trees_all_equal(got, want)
    assert np.all(np.asarray(got[1][-1]) == -1) and not np.any(np.asarray(got[0][-1]))  # batch index out of range
    out, arg, code = want
    g = jnp.asarray(np.random.default_rng(4).uniform(0.5, 1.5, out.shape), jnp.float32)
    ranges = geometry.image_ranges(batch, 2)
    dx = module.backward(g, arg, code, ranges, geo, x.shape, BLOCKS, target, **kwargs)
    chex.assert_trees_all_close(dx, max_pool.backward_reference(g, x.shape, arg, code, geo), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["max", "corner_max"])
def test_reference_matches_xla_on_tied_corners(mode):
    """The reference's forward value and feature gradient are the XLA path's, ties included."""
    x, boxes, batch, spec = _tied_problem(mode)
    geo = geometry.max_geometry(boxes, batch, 2, spec)
    out, arg, code = max_pool.forward_reference(x, geo, spec.output_size, mode == "corner_max")
    g = jnp.asarray(np.random.default_rng(4).uniform(0.5, 1.5, out.shape), jnp.float32)
    dx = max_pool.backward_reference(g, x.shape, arg, code, geo)
    want, pullback = jax.vjp(lambda x: xla.roi_align(x, boxes, batch, spec), x)
    chex.assert_trees_all_close(out, want, rtol=1e-6, atol=1e-6)
    chex.assert_trees_all_close(dx, pullback(g)[0], rtol=1e-6, atol=1e-6)
