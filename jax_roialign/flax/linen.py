"""Flax linen modules for RoIAlign: thin, parameter-free wrappers over the functional API.

:class:`RoIAlign` and :class:`MultiScaleRoIAlign` hold configuration only (their fields
are those of ``jax_roialign.module_config``) and call :func:`jax_roialign.roi_align` /
:func:`jax_roialign.multiscale_roi_align`, so their results are those functions'
results, bit for bit, under ``jit``, ``vmap`` and ``grad``.  Arguments are validated when
the module is constructed.
"""

from __future__ import annotations

import flax.linen as nn

from jax_roialign.module_config import MultiScaleOptions, RoIAlignOptions

__all__ = ["MultiScaleRoIAlign", "RoIAlign"]


class RoIAlign(RoIAlignOptions, nn.Module):
    """RoIAlign as a linen module (no parameters, no state).

    Fields: those of :class:`jax_roialign.module_config.RoIAlignOptions`, the keywords of
    :func:`jax_roialign.roi_align` (``output_size``, ``spatial_scale``, ``sampling_ratio``,
    ``aligned``, ``mode``, ``impl``).  A bad value raises ValueError / TypeError at construction.

    Call with NHWC ``features`` (N, H, W, C) and ``boxes`` [x1, y1, x2, y2] in input-image
    coordinates: per-image padded (N, R, 4) giving (N, R, out_h, out_w, C); or (K, 4) with
    ``batch_indices`` (K,) ints (optional when N == 1), or (K, 5) [batch_index, x1, y1, x2, y2],
    giving (K, out_h, out_w, C).  The result has the features' dtype; accumulation is float32
    (float64 for float64 features).  Differentiable w.r.t. features and boxes.
    """

    def __post_init__(self) -> None:
        self.check_options()
        super().__post_init__()


class MultiScaleRoIAlign(MultiScaleOptions, nn.Module):
    """RoIAlign over FPN levels as a linen module (no parameters, no state).

    Fields: those of :class:`jax_roialign.module_config.MultiScaleOptions`, the keywords of
    :func:`jax_roialign.multiscale_roi_align`.  A bad value raises ValueError / TypeError at
    construction.

    Call with ``features``, a sequence (finest first) or dict (in its order) of NHWC levels
    (N, H_l, W_l, C), boxes as for :class:`RoIAlign`, and optionally ``valid``, a bool mask of
    ``boxes.shape[:-1]``; each box is pooled from the level its size selects.  Returns
    (K, out_h, out_w, C) or (N, R, out_h, out_w, C), rows in input order, in the features'
    dtype (float32 accumulation, float64 for float64).
    """

    def __post_init__(self) -> None:
        self.check_options()
        super().__post_init__()
