"""Pallas kernels for RoIAlign (installed as ``jax_roialign.kernels``).

The fused GPU and TPU kernels are built in a later step; until then
:func:`roi_align` raises NotImplementedError, which the dispatcher in
``jax_roialign.ops`` reads as "use the next implementation" (XLA).
"""

from __future__ import annotations

import jax

from jax_roialign.conventions import RoIAlignSpec


def roi_align(features: jax.Array, boxes: jax.Array, batch_indices: jax.Array, spec: RoIAlignSpec) -> jax.Array:
    """Pallas RoIAlign of canonical inputs (same contract as jax_roialign.xla.roi_align)."""
    raise NotImplementedError("the Pallas RoIAlign kernels are not available in this version")
