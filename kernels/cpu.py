"""RoIAlign on the CPU kernels: avg (``tap_sum_cpu``) and the max modes on fixed grids (``max_pool_cpu``).

Contract: that of ``jax_roialign.xla.roi_align``; a call the kernels do not cover (max
modes on adaptive grids) raises NotImplementedError, so that impl=None runs XLA.
"""

from __future__ import annotations

import jax

from jax_roialign.conventions import RoIAlignSpec

from . import max_pool_cpu, tap_sum_cpu


def roi_align(features: jax.Array, boxes: jax.Array, batch_indices: jax.Array, spec: RoIAlignSpec) -> jax.Array:
    """RoIAlign of canonical inputs on the CPU kernels; returns (K, out_h, out_w, C) in features' dtype."""
    pool = tap_sum_cpu.roi_align if spec.mode == "avg" else max_pool_cpu.roi_align
    return pool(features, boxes, batch_indices, spec)
