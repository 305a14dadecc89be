"""RoIAlign in plain jax.numpy: the differentiable reference every other path must match.

Inputs are already canonical (see ``jax_roialign.canonical``): features (N, H, W, C),
boxes (K, 4) [x1, y1, x2, y2] in input-image coordinates, batch_indices (K,) int32.
"""

from __future__ import annotations

import functools

import jax

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import guards
from jax_roialign.xla.max_pool import max_pool
from jax_roialign.xla.tap_sum import avg_pool


def roi_align(features: jax.Array, boxes: jax.Array, batch_indices: jax.Array, spec: RoIAlignSpec) -> jax.Array:
    """RoIAlign of canonical inputs; returns (K, out_h, out_w, C) in features' dtype.

    Contract (conventions.md section 1), with ``value(k, y, x)`` the bilinear read of
    image ``batch_indices[k]`` and ``y(p, i)``, ``x(q, j)`` the sample coordinates::

        avg:        out[k, p, q] = sum_{i, j} value(k, y(p, i), x(q, j)) / max(gh * gw, 1)
        max:        out[k, p, q] = max_{i, j} value(k, y(p, i), x(q, j))
        corner_max: the max over samples of the largest of the four weighted corner
                    terms (onnxruntime)

    Accumulation is in float32 (float64 for float64 features).  A box whose batch
    index lies outside [0, N) reads nothing and yields zeros; a box with a NaN or
    infinite coordinate reads nothing, yields NaN and passes no gradient; a bin with
    no samples (adaptive grid of a zero-size aligned box) yields zero in every mode.
    """
    pool = avg_pool if spec.mode == "avg" else max_pool
    return guards.guarded_pool(functools.partial(pool, spec=spec), features, boxes, batch_indices)
