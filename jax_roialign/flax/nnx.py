"""Flax nnx modules for RoIAlign: thin, parameter-free wrappers over the functional API.

Same contract as :mod:`jax_roialign.flax.linen` (see its classes for shapes and dtypes).
The modules are dataclasses whose fields are those of ``jax_roialign.module_config``,
validated when they are built; they hold no ``nnx.Variable`` and pass through
``nnx.jit``, ``nnx.vmap``, ``nnx.grad`` and plain ``jax`` transforms unchanged.
"""

from __future__ import annotations

import dataclasses

from flax import nnx

from jax_roialign.module_config import MultiScaleOptions, RoIAlignOptions

__all__ = ["MultiScaleRoIAlign", "RoIAlign"]


@dataclasses.dataclass
class RoIAlign(RoIAlignOptions, nnx.Module):
    """RoIAlign as an nnx module (no parameters, no state).

    Arguments: those of :class:`jax_roialign.module_config.RoIAlignOptions` (``output_size``,
    ``spatial_scale``, ``sampling_ratio``, ``aligned``, ``mode``, ``impl``); a bad value raises
    ValueError / TypeError here.  ``module(features, boxes, batch_indices=None)`` takes NHWC
    features (N, H, W, C) and boxes (N, R, 4), (K, 4) with batch_indices, or (K, 5), and returns
    (N, R, out_h, out_w, C) or (K, out_h, out_w, C) in the features' dtype (float32
    accumulation, float64 for float64).
    """

    def __post_init__(self) -> None:
        self.check_options()


@dataclasses.dataclass
class MultiScaleRoIAlign(MultiScaleOptions, nnx.Module):
    """RoIAlign over FPN levels as an nnx module (no parameters, no state).

    Arguments: those of :class:`jax_roialign.module_config.MultiScaleOptions`; a bad value
    raises ValueError / TypeError here.  ``module(features, boxes, batch_indices=None,
    valid=None)`` takes a sequence (finest first) or dict of NHWC levels and boxes as
    :class:`RoIAlign`, and returns (K, out_h, out_w, C) or (N, R, out_h, out_w, C), rows in
    input order.
    """

    def __post_init__(self) -> None:
        self.check_options()
