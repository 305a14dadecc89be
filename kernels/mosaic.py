"""Data movement shared by the TPU (Mosaic) kernels: box chunks and a double-buffered DMA loop.

The per-box tables of a call are scalar-prefetched into SMEM (``PrefetchScalarGridSpec``),
which holds 1 MiB on every TPU generation; a call handles at most
:data:`MAX_BOXES_PER_CALL` boxes, and more boxes take several calls.  Blocks a kernel
picks at run time (a box's image rows, a box's cotangent) are copied from HBM into
VMEM by :func:`pipelined`, which starts the copies of step i + 1 before it computes
step i.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
from jax.experimental import pallas as pl

# Boxes per call: a call's SMEM tables take at most 11 int32/float32 entries per box
# (the max backward pass), 352 KiB at this size, well inside SMEM's 1 MiB.
MAX_BOXES_PER_CALL = 8192


def box_chunks(num_boxes: int, max_boxes: int = MAX_BOXES_PER_CALL) -> list[tuple[int, int]]:
    """[(first box, boxes)] covering range(num_boxes) in order, each at most max_boxes long."""
    if max_boxes < 1:
        raise ValueError(f"max_boxes must be >= 1, got {max_boxes}")
    return [(start, min(max_boxes, num_boxes - start)) for start in range(0, num_boxes, max_boxes)]


def pipelined(
    steps: jax.Array,
    copies: Callable[[jax.Array, jax.Array], Sequence[Any]],
    body: Callable[[jax.Array, jax.Array, Any], Any],
    carry: Any,
) -> Any:
    """fori_loop over steps i in [0, steps) with the DMAs of step i + 1 in flight while step i computes.

    ``copies(i, slot)`` returns the async copies (``pltpu.make_async_copy``) of step i
    into buffer ``slot`` (0 or 1); ``body(i, slot, carry)`` reads that slot and returns
    the new carry.  Step i's copies are built only where i < steps, so they may read
    tables that hold garbage past the last step.
    """

    @pl.when(steps > 0)
    def _():
        for copy in copies(0, 0):
            copy.start()

    def step(i, carry):
        slot = i % 2

        @pl.when(i + 1 < steps)
        def _():
            for copy in copies(i + 1, 1 - slot):
                copy.start()

        for copy in copies(i, slot):
            copy.wait()
        return body(i, slot, carry)

    return jax.lax.fori_loop(0, steps, step, carry)
