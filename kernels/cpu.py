"""RoIAlign on the CPU kernels: avg (``tap_sum_cpu``) and the max modes on fixed grids (``max_pool_cpu``).

Contract: that of ``jax_roialign.xla.roi_align``; a call the kernels do not cover (max
modes on adaptive grids) raises NotImplementedError, so that impl=None runs XLA.
"""

from __future__ import annotations

import functools

import jax

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import guards

from . import cpu_call, max_pool_cpu, tap_sum_cpu


def roi_align(features: jax.Array, boxes: jax.Array, batch_indices: jax.Array, spec: RoIAlignSpec) -> jax.Array:
    """RoIAlign of canonical inputs on the CPU kernels; returns (K, out_h, out_w, C) in features' dtype."""
    pool = tap_sum_cpu.avg_pool if spec.mode == "avg" else max_pool_cpu.max_pool
    # The non-finite boxes read nothing on the kernels: their NaN needs no masked tangent.
    return guards.guarded_pool(
        functools.partial(pool, spec=spec), features, boxes, batch_indices, mark=cpu_call.mark_nonfinite
    )
