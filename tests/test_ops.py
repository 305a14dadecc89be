"""The dispatch between implementations in jax_roialign.ops."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

import jax_roialign as jr
from tests.roi_align_base import problem


def test_impl_dispatch_on_cpu():
    """impl=None runs XLA; impl="pallas" runs the kernels (interpreted on a CPU), never silently XLA."""
    features, boxes, batch = problem(1.0, dtype="float32")
    x, b = jnp.asarray(features, jnp.float32), jnp.asarray(boxes, jnp.float32)
    auto = jr.roi_align(x, b, 3, batch_indices=batch)
    chex.assert_trees_all_equal(auto, jr.roi_align(x, b, 3, batch_indices=batch, impl="xla"))
    pallas = jax.jit(lambda x: jr.roi_align(x, b, 3, batch_indices=batch, impl="pallas")).lower(x)
    assert "roi_align_avg_forward" in pallas.as_text(debug_info=True)
