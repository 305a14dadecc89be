"""Which Pallas lowering a kernel is built for, and the settings of each.

Each kernel exists once per backend, because the two lowerings want different data
movement (``avg_pool_triton.py`` / ``avg_pool_mosaic.py``, ``max_pool_triton.py`` /
``max_pool_mosaic.py``, beside the shared geometry and each kernel's reference):

- ``"triton"`` (GPU, Pallas' Triton lowering): every array stays in global memory and
  a kernel loads the block it needs in place.  In JAX 0.10 the default Pallas GPU
  lowering is Mosaic GPU, whose programming model (warpgroups, TMA, ``plgpu.kernel``)
  does not fit a gather-bound kernel like this one; the Triton lowering is chosen
  explicitly through its ``CompilerParams``.  JAX has deprecated Triton in favour of
  Mosaic GPU, so a later JAX may drop it: :func:`platform_target` then raises
  NotImplementedError (see docs/kernels.md).
- ``"mosaic"`` (TPU): the per-box tables are scalar-prefetched into SMEM, large
  arrays stay in HBM (``pl.ANY``) and a kernel copies the blocks it picks at run time
  into VMEM with double-buffered DMAs.

Either variant also runs in Pallas interpret mode (``interpret=True``; Mosaic's with
``pltpu.InterpretParams``, which simulates DMAs and semaphores), on any machine.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import jax.numpy as jnp

from .config import BlockSizes, round_up

Backend = Literal["triton", "mosaic"]
BACKENDS: tuple[str, ...] = ("triton", "mosaic")


@dataclasses.dataclass(frozen=True)
class Target:
    """A kernel variant ("triton" or "mosaic") and whether it runs interpreted.

    Attributes:
      backend: "triton" (GPU data movement) or "mosaic" (TPU data movement).
      interpret: run through Pallas' interpreter (any backend, e.g. a CPU) instead
        of compiling for the hardware.
      vmem_limit_bytes: Mosaic only: the scoped VMEM a kernel may use (default None:
        the chip's default scoped limit).  A kernel that
        needs more fails to compile, and the error states what it needs (how
        ``jax_roialign.tools.aot`` measures the kernels' VMEM).
    """

    backend: Backend
    interpret: bool = False
    vmem_limit_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"Target.backend must be one of {BACKENDS}, got {self.backend!r}")
        if not isinstance(self.interpret, bool):
            raise TypeError(f"Target.interpret must be a bool, got {self.interpret!r}")
        limit = self.vmem_limit_bytes
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"Target.vmem_limit_bytes must be None or an int >= 1, got {limit!r}")

    def interpret_params(self) -> Any:
        """pallas_call's ``interpret`` argument for this target."""
        if not self.interpret:
            return False
        if self.backend == "mosaic":
            from jax.experimental.pallas import tpu as pltpu

            return pltpu.InterpretParams()
        return True

    def compiler_params(self, grid_axes: int) -> Any:
        """pallas_call's ``compiler_params``: every grid axis independent ("parallel") on Mosaic.

        None in interpret mode, where they do not apply (so interpreting needs neither lowering).
        """
        if self.interpret:
            return None
        if self.backend == "mosaic":
            from jax.experimental.pallas import tpu as pltpu

            return pltpu.CompilerParams(
                dimension_semantics=("parallel",) * grid_axes, vmem_limit_bytes=self.vmem_limit_bytes
            )
        from jax.experimental.pallas import triton as pltriton

        return pltriton.CompilerParams()


# The block sizes each backend uses unless told otherwise, chosen from ahead-of-time
# compiles (docs/kernels.md, "Block sizes"): on an H100 the candidate whose kernels compile
# without spills, at 7 x 7 and 14 x 14 outputs, in the fewest registers; on TPU v4 .. 7x
# one lane width of channels and one sublane group of rows (at most 1.1 MiB of scoped VMEM per
# kernel on every generation: docs/kernels.md).
DEFAULT_BLOCK_SIZES: dict[str, BlockSizes] = {
    "triton": BlockSizes(channels=32, tile_rows=8, tile_cols=8),
    "mosaic": BlockSizes(channels=128, tile_rows=8, tile_cols=8),
}


def default_block_sizes(target: Target) -> BlockSizes:
    """The block sizes of a kernel variant when none are given."""
    return DEFAULT_BLOCK_SIZES[target.backend]


def _triton_available() -> bool:
    try:
        from jax.experimental.pallas import triton  # noqa: F401
    except ImportError:
        return False
    return True


def platform_target(platform: str) -> Target:
    """The kernel variant for the platform a program is lowered (compiled) for.

    "tpu": the Mosaic variant; "cuda" / "rocm" / "gpu": the Triton variant; any other
    platform (a CPU): the Triton variant in interpret mode, the only mode in which
    Pallas runs there.  Raises NotImplementedError naming the reason where the GPU
    lowering is unavailable (a JAX without Pallas' Triton lowering).
    """
    if platform == "tpu":
        return Target("mosaic")
    if platform in ("cuda", "rocm", "gpu"):
        if not _triton_available():
            raise NotImplementedError("Pallas RoIAlign needs the Pallas Triton lowering, which this JAX lacks")
        return Target("triton")
    return Target("triton", interpret=True)


def check_block_sizes(target: Target, block_sizes: BlockSizes, channels: int) -> None:
    """ValueError for block sizes a compiled target cannot tile with.

    Mosaic (TPU) blocks span whole 128-lane vregs, so a channel block that splits
    the channels must be a multiple of 128.
    """
    block_c = block_sizes.channel_block(channels)
    splits = round_up(channels, block_c) > block_c
    if target.backend == "mosaic" and not target.interpret and splits and block_c % 128:
        raise ValueError(
            f"BlockSizes.channels must be a multiple of 128 on TPU when it splits the {channels} channels, "
            f"got {block_sizes.channels}"
        )


def check_supported(target: Target, dtype: jnp.dtype) -> None:
    """NotImplementedError for calls a compiled target cannot run (the dispatcher then uses XLA)."""
    if target.backend == "mosaic" and jnp.dtype(dtype) == jnp.float64:
        raise NotImplementedError(
            "Pallas RoIAlign on TPU has no float64 (Mosaic has no 64-bit floats, nor does its interpreter)"
        )


def supported(platform: str, dtype: jnp.dtype) -> bool:
    """Whether the kernels compile for this platform and dtype (what ``impl=None`` asks before choosing them)."""
    try:
        check_supported(platform_target(platform), dtype)
    except NotImplementedError:
        return False
    return True
