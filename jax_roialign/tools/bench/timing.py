"""Timing jax_roialign itself: compiled once ahead of time, then medians of repeated calls."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from jax_roialign.tools.arg_specs import PasteWorkload, ResizeWorkload, Workload


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """{name: median wall time of fn()} over `repeats` rounds that call every fn in turn,
    twice: once untimed, then timed.

    The timed call follows a call of the same program, so it finds the caches as repeated
    calls leave them (its inputs and buffers warm), as the peers' call-after-call timing
    (:func:`median_seconds`) does, and not as the other programs of the round left them
    (a step writes a 28 MB gradient, which evicts the features from a 32 MiB L3).
    Interleaved, so that a slow spell of the machine falls on all of them alike and their
    ratios stay meaningful.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            fn()
            times[name].append(_seconds(fn))
    return {name: float(np.median(t)) for name, t in times.items()}


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of fn() over `repeats` calls in a row, after one warm-up call."""
    fn()
    return float(np.median([_seconds(fn) for _ in range(repeats)]))


def _seconds(fn: Callable[[], object]) -> float:
    """Wall time of one call of fn()."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_ours(workload: Workload | ResizeWorkload | PasteWorkload, impl: str, repeats: int) -> dict:
    """Our timings of any workload (by its op); impl selects the box pooling op's implementation."""
    if isinstance(workload, Workload):
        return time_roi_align(workload, impl, repeats)
    return time_array_op(workload, repeats)


def training_step(fn: Callable, n_diff: int = 1) -> Callable:
    """(cotangent, *args) -> (fn(*args), gradients of <fn(*args), cotangent> w.r.t. args[:n_diff]).

    What a training step computes, and what every peer's forward+backward runs: the output
    is a result, so XLA keeps the forward (a linear op's gradient alone does not need it).
    """
    import jax

    def step(cotangent, *args):
        out, pullback = jax.vjp(lambda *diff: fn(*diff, *args[n_diff:]), *args[:n_diff])
        return out, pullback(cotangent)

    return step


def _backward_peak_memory(fn: Callable, args: tuple, cotangent, floor_bytes: int) -> dict:
    """XLA's peak buffer bytes (live arguments, outputs and temporaries) of the backward alone:
    the gradient of <fn(*args), cotangent> w.r.t. args[0], whose arguments and result are the
    floor (cotangent, features, their gradient); in MiB and over floor_bytes; {} where XLA
    gives no memory analysis.  The timed step also holds the output: one more output's size."""
    import jax
    import jax.numpy as jnp

    backward = jax.grad(lambda c, x, *rest: jnp.vdot(fn(x, *rest), c), argnums=1)
    memory = jax.jit(backward).lower(cotangent, *args).compile().memory_analysis()
    if memory is None:
        return {}
    peak = memory.argument_size_in_bytes + memory.output_size_in_bytes + memory.temp_size_in_bytes
    return {"backward_peak_mb": peak / 2**20, "backward_peak_over_floor": peak / floor_bytes}


def _compiled_timings(fn: Callable, args: tuple, cotangent, repeats: int) -> dict:
    """forward and forward+backward (the output and the gradient w.r.t. args[0] for a fixed
    cotangent, :func:`training_step`) of fn, each compiled ahead of time; with the backward's
    peak memory over its floor (:func:`_backward_peak_memory`)."""
    import jax

    start = time.perf_counter()
    forward = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    # The cotangent is an argument: a linear op's gradient does not depend on its input, and
    # XLA would fold a captured cotangent's whole backward pass into a compile-time constant.
    backward = jax.jit(training_step(fn)).lower(cotangent, *args).compile()
    seconds = interleaved_medians(
        {
            "forward_ms": lambda: jax.block_until_ready(forward(*args)),
            "forward_backward_ms": lambda: jax.block_until_ready(backward(cotangent, *args)),
        },
        repeats,
    )
    result = {name: 1e3 * s for name, s in seconds.items()} | {"compile_s": compile_s}
    return result | _backward_peak_memory(fn, args, cotangent, cotangent.nbytes + 2 * args[0].nbytes)


def time_array_op(workload: ResizeWorkload | PasteWorkload, repeats: int) -> dict:
    """jax_roialign.resize or paste_masks (soft masks, torchvision's convention) on the workload."""
    import jax.numpy as jnp

    from jax_roialign import paste_masks, resize

    arrays = tuple(jnp.asarray(a) for a in workload.arrays())
    cotangent = jnp.asarray(np.random.default_rng(1).standard_normal(workload.output_shape()), jnp.float32)
    if workload.op == "resize":
        size = (workload.out_height, workload.out_width)
        return _compiled_timings(lambda x: resize(x, size, **workload.kwargs()), arrays, cotangent, repeats)
    canvas = (workload.height, workload.width)
    return _compiled_timings(lambda m, b: paste_masks(m, b, canvas, threshold=None), arrays, cotangent, repeats)


def time_roi_align(workload: Workload, impl: str, repeats: int) -> dict:
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
    backward = jax.jit(training_step(pool)).lower(cot, x, boxes).compile()
    with_boxes = jax.jit(training_step(pool, 2)).lower(cot, x, boxes).compile()
    seconds = interleaved_medians(
        {
            "forward_ms": lambda: forward(x, boxes).block_until_ready(),
            "forward_backward_ms": lambda: jax.block_until_ready(backward(cot, x, boxes)),
            "forward_backward_boxes_ms": lambda: jax.block_until_ready(with_boxes(cot, x, boxes)),
        },
        repeats,
    )
    result = {name: 1e3 * s for name, s in seconds.items()} | {"compile_s": compile_s}
    # The floor: output + features + their gradient.
    floor = workload.output_bytes() + 2 * workload.feature_bytes()
    return result | _backward_peak_memory(pool, (x, boxes), cot, floor)
