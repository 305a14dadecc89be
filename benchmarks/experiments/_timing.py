"""Timing shared by the experiment scripts: ahead-of-time compile, one warm-up call, median of 7."""

import time

import jax
import numpy as np


def time_compiled(f, args):
    """Compile ``f`` ahead of time, call it once to warm up, then time 7 calls.

    Returns the warm-up call's result, the median call time (s), the compile time (s) and the
    compiled program's temporaries (bytes).
    """
    t0 = time.perf_counter()
    compiled = jax.jit(f).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    result = compiled(*args)
    jax.block_until_ready(result)
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t0)
    return result, np.median(times), compile_s, compiled.memory_analysis().temp_size_in_bytes
