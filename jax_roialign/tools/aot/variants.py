"""The kernel variants compiled ahead of time, and the program each one compiles.

A variant is one public-API program, ``jax.vjp`` of ``jax_roialign.roi_align(...,
impl="pallas")`` with respect to the features (the forward kernel and the feature-gradient
kernel), for one mode, dtype, sampling grid, output size and number of boxes, at the
target's default block sizes; or the same through ``jax_roialign.kernels.roi_align``
with explicit ``BlockSizes`` (the public op takes none).

:func:`full_matrix` is every variant (``python -m jax_roialign aot``);
:func:`ci_matrix` the subset the test suite compiles on every CI run (see its docstring).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from jax_roialign.kernels.mosaic import MAX_BOXES_PER_CALL

from .targets import platform_of

MODES: tuple[str, ...] = ("avg", "max", "corner_max")
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
SAMPLING_RATIOS: tuple[int, ...] = (2, 0)  # a fixed grid and the adaptive one
OUTPUT_SIZES: tuple[int, ...] = (7, 14)  # the box head and the mask head
# P4 of an 800 x 1088 input (stride 16), 256 channels; 4096 boxes (SMEM tables of the
# Mosaic kernels are sized by the number of boxes).
FEATURES: tuple[int, int, int, int] = (2, 50, 68, 256)
BOXES = 4096
# More boxes than one Mosaic call takes: three calls per kernel.
MANY_BOXES = 2 * MAX_BOXES_PER_CALL + 1

# The block sizes documented in docs/kernels.md ("Block sizes") besides the defaults; CI
# compiles one of each platform's (ci_matrix), the full matrix (`aot`) all on every target.
DOCUMENTED_BLOCK_SIZES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "gpu": ((64, 8, 8), (32, 16, 8), (32, 8, 16)),
    "tpu": ((256, 8, 8), (128, 16, 8), (128, 8, 16)),
}


@dataclasses.dataclass(frozen=True)
class Variant:
    """One program to compile.  ``block_sizes=None``: the public op at the target's defaults."""

    mode: str
    dtype: str
    sampling_ratio: int
    output_size: int = 7
    boxes: int = BOXES
    block_sizes: tuple[int, int, int] | None = None
    features: tuple[int, int, int, int] = FEATURES

    @property
    def name(self) -> str:
        blocks = "default" if self.block_sizes is None else "x".join(map(str, self.block_sizes))
        grid = "adaptive" if self.sampling_ratio <= 0 else f"sr{self.sampling_ratio}"
        return f"{self.mode}-{self.dtype}-{grid}-out{self.output_size}-k{self.boxes}-blocks{blocks}"

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Variant:
        d = dict(d)
        for key in ("block_sizes", "features"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)

    def kernels(self) -> list[str]:
        """The kernels its compiled program must hold."""
        kind = "avg" if self.mode == "avg" else "max"
        return [f"roi_align_{kind}_forward", f"roi_align_{kind}_features_backward"]

    def program(self, abstract) -> tuple[Any, tuple]:
        """(function, abstract arguments) of this variant; ``abstract(shape, dtype)`` places an argument."""
        import jax
        import jax.numpy as jnp

        import jax_roialign as jr
        from jax_roialign import kernels
        from jax_roialign.conventions import RoIAlignSpec

        n, h, w, c = self.features
        k, out = self.boxes, self.output_size
        kwargs = dict(spatial_scale=1 / 16, sampling_ratio=self.sampling_ratio, aligned=True)
        if self.block_sizes is None:

            def op(x, boxes, batch):
                return jr.roi_align(x, boxes, out, batch_indices=batch, mode=self.mode, impl="pallas", **kwargs)

        else:
            spec = RoIAlignSpec((out, out), mode=self.mode, **kwargs)
            blocks = kernels.BlockSizes(*self.block_sizes)

            def op(x, boxes, batch):
                return kernels.roi_align(x, boxes, batch, spec, block_sizes=blocks)

        def value_and_feature_gradient(x, boxes, batch, g):
            out, pullback = jax.vjp(lambda x: op(x, boxes, batch), x)
            return out, pullback(g)[0]

        args = (
            abstract((n, h, w, c), self.dtype),
            abstract((k, 4), jnp.float32),
            abstract((k,), jnp.int32),
            abstract((k, out, out, c), self.dtype),
        )
        return value_and_feature_gradient, args


def full_matrix(target: str) -> list[Variant]:
    """Every variant: modes x dtypes x grids x output sizes at the defaults, each documented
    block size on every mode and output size, and more boxes than one Mosaic call takes on
    every mode."""
    variants = [Variant(m, d, r, o) for m, d, r, o in itertools.product(MODES, DTYPES, SAMPLING_RATIOS, OUTPUT_SIZES)]
    for blocks in DOCUMENTED_BLOCK_SIZES[platform_of(target)]:
        variants += [Variant(m, "float32", 2, output_size=o, block_sizes=blocks) for m in MODES for o in OUTPUT_SIZES]
    variants += [Variant(m, "float32", 0, boxes=MANY_BOXES) for m in MODES]
    return variants


# The CI subset: targets whose compiles of the adaptive grid's XLA code are cheap take the
# adaptive grid, the others the fixed one (tpu-v6e compiles the adaptive max program in
# about 40 s of CPU, tpu-v5e in 6 s).
_ADAPTIVE_IN_CI = ("tpu-v4", "tpu-v5e", "gpu-h100")
_FIXED_IN_CI = ("tpu-v5p", "tpu-v6e", "tpu-7x")


def ci_matrix(target: str) -> list[Variant]:
    """The subset compiled on every CI run: every kernel on every target, the rest spread over targets.

    Per target, one program per mode (its forward and feature-gradient kernels) at the
    default block sizes, 4096 boxes.  tpu-v4, tpu-v5e and gpu-h100 compile the adaptive
    grid, the other three the fixed one, and the dtype of each mode rotates within each
    trio, so that over the six targets every mode meets every dtype on both grids.  Besides:
    gpu-h100 the mask head's 14 x 14 output and a documented block size, tpu-v4 a
    documented block size, tpu-v5e more boxes than one Mosaic call takes, tpu-v5p the
    14 x 14 output.
    """
    if target in _ADAPTIVE_IN_CI:
        ratio, slot = 0, _ADAPTIVE_IN_CI.index(target)
    else:
        ratio, slot = 2, _FIXED_IN_CI.index(target)
    variants = [Variant(mode, DTYPES[(slot + m) % 3], ratio) for m, mode in enumerate(MODES)]
    documented = DOCUMENTED_BLOCK_SIZES[platform_of(target)]
    extras = {
        "gpu-h100": [
            Variant("max", "float32", 2, output_size=14),
            Variant("avg", "float32", 2, block_sizes=documented[1]),
        ],
        "tpu-v4": [Variant("corner_max", "float32", 2, block_sizes=documented[0])],
        "tpu-v5e": [Variant("avg", "float32", 2, boxes=MANY_BOXES)],
        "tpu-v5p": [Variant("avg", "float32", 2, output_size=14)],
    }
    return variants + extras.get(target, [])
