"""The options of the Flax (linen, nnx) and Haiku modules, declared once.

:class:`RoIAlignOptions` and :class:`MultiScaleOptions` are plain dataclasses holding
the keywords of :func:`jax_roialign.roi_align` / :func:`jax_roialign.multiscale_roi_align`
that a module fixes when it is built, and the call that pools with them.  Every module
class inherits its fields and its ``__call__`` from one of them (linen and nnx modules
and Haiku modules are dataclasses too) and checks the fields with :meth:`check_options`
when it is constructed (a bad value raises ValueError / TypeError there).  The call is
exactly the function called with those keywords, so a module's result is the
function's, bit for bit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import jax

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.multiscale import check_level_config, multiscale_roi_align
from jax_roialign.ops import check_impl, roi_align


def _keywords(options: object, fields_of: type) -> dict:
    """The values of ``fields_of``'s fields (not a subclass's extra ones, e.g. a module's name)."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(fields_of)}


@dataclasses.dataclass
class RoIAlignOptions:
    """Keywords of :func:`jax_roialign.roi_align` fixed by a module.

    Attributes:
      output_size: int or (out_h, out_w).
      spatial_scale: box -> feature coordinates (e.g. 1/16).
      sampling_ratio: > 0 fixed samples per bin and axis, <= 0 adaptive.
      aligned: half-pixel (True) or legacy (False) coordinates.
      mode: "avg", "max" or "corner_max".
      impl: None, "xla", "pallas" or "cpu".
    """

    output_size: int | tuple[int, int]
    spatial_scale: float = 1.0
    sampling_ratio: int = 0
    aligned: bool = True
    mode: str = "avg"
    impl: str | None = None

    def check_options(self) -> None:
        """ValueError / TypeError naming the first bad option."""
        RoIAlignSpec(self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned, self.mode)
        check_impl(self.impl)

    def __call__(self, features: jax.Array, boxes: jax.Array, batch_indices: jax.Array | None = None) -> jax.Array:
        """:func:`jax_roialign.roi_align` of NHWC features and boxes with these options."""
        options = _keywords(self, RoIAlignOptions)
        return roi_align(features, boxes, options.pop("output_size"), batch_indices=batch_indices, **options)


@dataclasses.dataclass
class MultiScaleOptions:
    """Keywords of :func:`jax_roialign.multiscale_roi_align` fixed by a module.

    Attributes:
      output_size: int or (out_h, out_w).
      spatial_scales: one per level, finest first, strictly decreasing; or None to
        infer them from image_size as torchvision does.
      image_size: (height, width) of the input image, needed when spatial_scales is None.
      sampling_ratio, aligned, mode, impl: as in :class:`RoIAlignOptions`.
      canonical_size, canonical_level, mapper: the level rule ("torchvision" or "detectron2").
    """

    output_size: int | tuple[int, int]
    spatial_scales: Sequence[float] | None = None
    image_size: tuple[int, int] | None = None
    sampling_ratio: int = 0
    aligned: bool = True
    mode: str = "avg"
    canonical_size: float = 224.0
    canonical_level: int = 4
    mapper: str = "torchvision"
    impl: str | None = None

    def check_options(self) -> None:
        """ValueError / TypeError naming the first bad option."""
        RoIAlignSpec(self.output_size, 1.0, self.sampling_ratio, self.aligned, self.mode)  # scales are per level
        check_level_config(self.spatial_scales, self.image_size, self.canonical_size, self.canonical_level, self.mapper)
        check_impl(self.impl)

    def __call__(
        self,
        features: Sequence[jax.Array] | Mapping[str, jax.Array],
        boxes: jax.Array,
        batch_indices: jax.Array | None = None,
        valid: jax.Array | None = None,
    ) -> jax.Array:
        """:func:`jax_roialign.multiscale_roi_align` of NHWC levels and boxes with these options."""
        options = _keywords(self, MultiScaleOptions)
        return multiscale_roi_align(
            features, boxes, options.pop("output_size"), batch_indices=batch_indices, valid=valid, **options
        )
