"""The configuration that the Flax (linen, nnx) and Haiku modules share, checked once.

Each module builds one of these frozen, hashable configs from its constructor
arguments (a bad value raises ValueError / TypeError there) and calls it to pool; the
call is exactly :func:`jax_roialign.roi_align` / :func:`jax_roialign.multiscale_roi_align`
with the config's keywords, so a module's result is the function's, bit for bit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import jax

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.multiscale import check_level_config, multiscale_roi_align
from jax_roialign.ops import check_impl, roi_align


def _keywords(config: object) -> dict:
    """The config's fields other than output_size: the functions' keyword arguments."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name != "output_size"}


@dataclasses.dataclass(frozen=True)
class RoIAlignConfig:
    """Checked keywords of :func:`jax_roialign.roi_align`; ``config(features, boxes, batch_indices)`` pools."""

    output_size: tuple[int, int]
    spatial_scale: float
    sampling_ratio: int
    aligned: bool
    mode: str
    impl: str | None

    @classmethod
    def checked(
        cls,
        output_size: int | tuple[int, int],
        spatial_scale: float = 1.0,
        sampling_ratio: int = 0,
        aligned: bool = True,
        mode: str = "avg",
        impl: str | None = None,
    ) -> RoIAlignConfig:
        """The normalized config (output_size as a pair), or ValueError / TypeError naming the argument."""
        spec = RoIAlignSpec(output_size, spatial_scale, sampling_ratio, aligned, mode)
        return cls(spec.output_size, spec.spatial_scale, spec.sampling_ratio, spec.aligned, spec.mode, check_impl(impl))

    def __call__(self, features: jax.Array, boxes: jax.Array, batch_indices: jax.Array | None = None) -> jax.Array:
        return roi_align(features, boxes, self.output_size, batch_indices=batch_indices, **_keywords(self))


@dataclasses.dataclass(frozen=True)
class MultiScaleConfig:
    """Checked keywords of :func:`jax_roialign.multiscale_roi_align`; calling it pools."""

    output_size: tuple[int, int]
    spatial_scales: tuple[float, ...] | None
    image_size: tuple[int, int] | None
    sampling_ratio: int
    aligned: bool
    mode: str
    canonical_size: float
    canonical_level: int
    mapper: str
    impl: str | None

    @classmethod
    def checked(
        cls,
        output_size: int | tuple[int, int],
        spatial_scales: Sequence[float] | None = None,
        image_size: tuple[int, int] | None = None,
        sampling_ratio: int = 0,
        aligned: bool = True,
        mode: str = "avg",
        canonical_size: float = 224.0,
        canonical_level: int = 4,
        mapper: str = "torchvision",
        impl: str | None = None,
    ) -> MultiScaleConfig:
        """The normalized config, or ValueError / TypeError naming the argument."""
        spec = RoIAlignSpec(output_size, 1.0, sampling_ratio, aligned, mode)  # spatial_scale is per level here
        scales, size = check_level_config(spatial_scales, image_size, canonical_size, canonical_level, mapper)
        return cls(
            spec.output_size,
            scales,
            size,
            spec.sampling_ratio,
            spec.aligned,
            spec.mode,
            float(canonical_size),
            int(canonical_level),
            mapper,
            check_impl(impl),
        )

    def __call__(
        self,
        features: Sequence[jax.Array] | Mapping[str, jax.Array],
        boxes: jax.Array,
        batch_indices: jax.Array | None = None,
        valid: jax.Array | None = None,
    ) -> jax.Array:
        return multiscale_roi_align(
            features, boxes, self.output_size, batch_indices=batch_indices, valid=valid, **_keywords(self)
        )
