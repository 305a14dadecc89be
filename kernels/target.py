"""Which Pallas lowering a kernel is built for, and the data movement that differs between them.

The kernel bodies are written once.  What differs per backend is where the inputs
live and how a kernel reads a block that it picks at run time (a box's image, a row,
a tile of columns):

- ``"triton"`` (GPU, Pallas' Triton lowering): every array stays in global memory and
  a kernel loads the block it needs in place.  In JAX 0.10 the default Pallas GPU
  lowering is Mosaic GPU, whose programming model (warpgroups, TMA, ``plgpu.kernel``)
  does not fit a gather-bound kernel like this one; the Triton lowering is chosen
  explicitly through its ``CompilerParams``.  JAX has deprecated Triton in favour of
  Mosaic GPU, so a later JAX may drop it: :func:`platform_target` then raises
  NotImplementedError and the dispatcher uses XLA.
- ``"mosaic"`` (TPU): per-box scalars live in SMEM, large arrays stay in HBM
  (``pl.ANY``) and a kernel copies the block it needs into VMEM with a DMA.

Either variant also runs in Pallas interpret mode (``interpret=True``), which is
the only way these kernels have been executed so far: on a CPU, in the tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

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
    """

    backend: Backend
    interpret: bool = False

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"Target.backend must be one of {BACKENDS}, got {self.backend!r}")
        if not isinstance(self.interpret, bool):
            raise TypeError(f"Target.interpret must be a bool, got {self.interpret!r}")

    def scalars(self) -> pl.BlockSpec:
        """Spec of a small per-box int or float table, read one entry at a time."""
        if self.backend == "mosaic":
            from jax.experimental.pallas import tpu as pltpu

            return pl.BlockSpec(memory_space=pltpu.SMEM)
        return pl.BlockSpec()

    def in_memory(self) -> pl.BlockSpec:
        """Spec of a large array that kernels read block by block via :meth:`read`."""
        if self.backend == "mosaic":
            return pl.BlockSpec(memory_space=pl.ANY)
        return pl.BlockSpec()

    def read(self, ref: Any, *index: Any) -> jax.Array:
        """ref[index] for an array given with :meth:`in_memory`: a load, or a DMA into VMEM."""
        if self.backend == "triton":
            return ref[index]
        from jax.experimental.pallas import tpu as pltpu

        window = ref.at[index]

        def copy(buffer):
            pltpu.sync_copy(window, buffer)
            return buffer[...]

        return pl.run_scoped(copy, pltpu.VMEM(window.shape, window.dtype))

    def pallas_call(
        self,
        kernel: Callable[..., None],
        *,
        name: str,
        grid: tuple[int, ...],
        in_specs: Sequence[pl.BlockSpec],
        out_specs: Any,
        out_shape: Any,
    ) -> Callable[..., Any]:
        """pl.pallas_call for this target; every grid axis is independent ("parallel")."""
        if self.backend == "mosaic":
            from jax.experimental.pallas import tpu as pltpu

            params = pltpu.CompilerParams(dimension_semantics=("parallel",) * len(grid))
        else:
            from jax.experimental.pallas import triton as pltriton

            params = pltriton.CompilerParams()
        return pl.pallas_call(
            kernel,
            name=name,
            grid=grid,
            in_specs=list(in_specs),
            out_specs=out_specs,
            out_shape=out_shape,
            compiler_params=params,
            interpret=self.interpret,
        )


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
    if target.backend == "mosaic" and not target.interpret and jnp.dtype(dtype) == jnp.float64:
        raise NotImplementedError("Pallas RoIAlign on TPU has no float64 (Mosaic has no 64-bit floats)")
