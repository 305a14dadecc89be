"""Timing jax_roialign itself: compiled once ahead of time, then medians of repeated calls."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from jax_roialign.tools.arg_specs import Workload


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of fn() over `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def time_ours(workload: Workload, impl: str, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    import jax_roialign

    op = getattr(jax_roialign, workload.op)
    x, boxes, idx = (jnp.asarray(a) for a in workload.arrays())
    cot = jnp.asarray(
        np.random.default_rng(1).standard_normal(
            (workload.num_boxes,) + (workload.output_size,) * 2 + (workload.output_channels,)
        ),
        x.dtype,
    )

    def pool(x, boxes):
        return op(x, boxes, workload.output_size, batch_indices=idx, impl=impl, **workload.kwargs())

    # Each function is compiled once, ahead of time, and the compiled executables are timed.
    start = time.perf_counter()
    forward = jax.jit(pool).lower(x, boxes).compile()
    compile_s = time.perf_counter() - start
    backward = jax.jit(jax.grad(lambda x, boxes: jnp.vdot(pool(x, jax.lax.stop_gradient(boxes)), cot)))
    backward = backward.lower(x, boxes).compile()
    with_boxes = jax.jit(jax.grad(lambda x, boxes: jnp.vdot(pool(x, boxes), cot), argnums=(0, 1)))
    with_boxes = with_boxes.lower(x, boxes).compile()
    memory = backward.memory_analysis()
    result = {
        "forward_ms": 1e3 * median_seconds(lambda: forward(x, boxes).block_until_ready(), repeats),
        "forward_backward_ms": 1e3 * median_seconds(lambda: backward(x, boxes).block_until_ready(), repeats),
        "forward_backward_boxes_ms": 1e3 * median_seconds(lambda: jax.block_until_ready(with_boxes(x, boxes)), repeats),
        "compile_s": compile_s,
    }
    if memory is not None:
        # XLA's buffer assignment: live arguments, outputs and temporaries at the peak.
        peak = memory.argument_size_in_bytes + memory.output_size_in_bytes + memory.temp_size_in_bytes
        floor = workload.output_bytes() + 2 * workload.feature_bytes()  # output + features + their gradient
        result["backward_peak_mb"] = peak / 2**20
        result["backward_peak_over_floor"] = peak / floor
    return result
