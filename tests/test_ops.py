"""The dispatch between implementations in jax_roialign.ops."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

import jax_roialign as jr
from jax_roialign import kernels
from tests.roi_align_base import problem


def test_impl_dispatch_on_cpu(monkeypatch):
    """impl=None runs the CPU kernels where they build, else XLA; impl="pallas" runs the Pallas
    kernels (interpreted on a CPU), never silently XLA."""
    features, boxes, batch = problem(1.0, dtype="float32")
    x, b = jnp.asarray(features, jnp.float32), jnp.asarray(boxes, jnp.float32)
    xla = jr.roi_align(x, b, 3, batch_indices=batch, impl="xla")
    auto = jax.jit(lambda x: jr.roi_align(x, b, 3, batch_indices=batch)).lower(x)
    assert 'custom_call_target="JaxRoialignReadF32"' in auto.compile().as_text()
    chex.assert_trees_all_close(auto.compile()(x), xla, rtol=1e-6, atol=1e-6)
    monkeypatch.setattr(kernels, "cpu_available", lambda: False)
    chex.assert_trees_all_equal(jr.roi_align(x, b, 3, batch_indices=batch), xla)
    pallas = jax.jit(lambda x: jr.roi_align(x, b, 3, batch_indices=batch, impl="pallas")).lower(x)
    assert "roi_align_avg_forward" in pallas.as_text(debug_info=True)


def test_impl_none_runs_the_kernels_only_on_a_verified_device_kind(monkeypatch):
    """The table of verified device kinds decides impl=None: listed, the kernels; otherwise XLA."""
    from jax_roialign.kernels import verified

    features, boxes, batch = problem(1.0, dtype="float32")
    x, b = jnp.asarray(features, jnp.float32), jnp.asarray(boxes, jnp.float32)
    monkeypatch.setattr(kernels, "cpu_available", lambda: False)  # a CPU takes its own kernels first

    def kernels_run() -> bool:
        lowered = jax.jit(lambda x: jr.roi_align(x, b, 3, batch_indices=batch)).lower(x)
        return "roi_align_avg_forward" in lowered.as_text(debug_info=True)

    assert not kernels_run()
    monkeypatch.setattr(verified, "verified_devices", lambda: {jax.devices()[0].device_kind: {}})
    assert kernels_run()
