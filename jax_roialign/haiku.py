"""Haiku modules for RoIAlign: thin, parameter-free wrappers over the functional API.

:class:`RoIAlign` and :class:`MultiScaleRoIAlign` hold configuration only (dataclass fields,
those of ``jax_roialign.module_config``, plus the module ``name``) and call
:func:`jax_roialign.roi_align` / :func:`jax_roialign.multiscale_roi_align`; like every
Haiku module they are built inside a function passed to ``hk.transform``, and they create
no parameters or state.  Arguments are validated when the module is built.  Needs Haiku
(``pip install "jax-roialign[haiku]"``); importing this module without it raises an
ImportError that says so.
"""

from __future__ import annotations

import dataclasses

from jax_roialign.module_config import MultiScaleOptions, RoIAlignOptions

try:
    import haiku as hk
except ImportError as err:
    raise ImportError('jax_roialign.haiku needs Haiku; install it with: pip install "jax-roialign[haiku]"') from err

__all__ = ["MultiScaleRoIAlign", "RoIAlign"]


@dataclasses.dataclass
class RoIAlign(RoIAlignOptions, hk.Module):
    """RoIAlign as a Haiku module (no parameters, no state).

    Arguments: those of :class:`jax_roialign.module_config.RoIAlignOptions` (``output_size``,
    ``spatial_scale``, ``sampling_ratio``, ``aligned``, ``mode``, ``impl``) and ``name``; a bad
    value raises ValueError / TypeError here.

    ``module(features, boxes, batch_indices=None)`` takes NHWC features (N, H, W, C) and boxes
    [x1, y1, x2, y2] in input-image coordinates, per-image padded (N, R, 4) or (K, 4) with
    batch_indices (K,) (or (K, 5)), and returns (N, R, out_h, out_w, C) or (K, out_h, out_w, C)
    in the features' dtype (float32 accumulation, float64 for float64).
    """

    name: str | None = "roi_align"

    def __post_init__(self) -> None:
        self.check_options()
        hk.Module.__init__(self, name=self.name)


@dataclasses.dataclass
class MultiScaleRoIAlign(MultiScaleOptions, hk.Module):
    """RoIAlign over FPN levels as a Haiku module (no parameters, no state).

    Arguments: those of :class:`jax_roialign.module_config.MultiScaleOptions` and ``name``; a
    bad value raises ValueError / TypeError here.

    ``module(features, boxes, batch_indices=None, valid=None)`` takes a sequence (finest first)
    or dict of NHWC levels and boxes as :class:`RoIAlign`, and returns (K, out_h, out_w, C) or
    (N, R, out_h, out_w, C), rows in input order, each box pooled from the level its size selects.
    """

    name: str | None = "multiscale_roi_align"

    def __post_init__(self) -> None:
        self.check_options()
        hk.Module.__init__(self, name=self.name)
