"""Box bins under a :class:`~jax_roialign.conventions.RoIAlignSpec`, and the accumulation dtype."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import sampling


def compute_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """Accumulation dtype: float64 for float64 features (x64), float32 otherwise."""
    return jnp.float64 if dtype == jnp.float64 else jnp.float32


def box_bins(boxes: jax.Array, spec: RoIAlignSpec) -> tuple[sampling.AxisBins, sampling.AxisBins]:
    """(y bins, x bins) of (K, 4) [x1, y1, x2, y2] boxes, each field of shape (K,).

    ``docs/conventions.md`` section 1.1, in the boxes' dtype (the compute dtype).
    """
    out_h, out_w = spec.output_size
    common = {"spatial_scale": spec.spatial_scale, "aligned": spec.aligned, "sampling_ratio": spec.sampling_ratio}
    by = sampling.axis_bins(boxes[:, 1], boxes[:, 3], pooled=out_h, **common)
    bx = sampling.axis_bins(boxes[:, 0], boxes[:, 2], pooled=out_w, **common)
    return by, bx
