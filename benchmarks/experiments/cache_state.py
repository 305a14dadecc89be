"""The CPU kernels' forward (or training step) per box with the features in the cache and evicted from it.

    python benchmarks/experiments/cache_state.py 64 128 256 512 1024
    python benchmarks/experiments/cache_state.py --step 64 128 256 512 1024

fpn-p3-sr2 with K boxes: "warm" is the median of 51 calls in a row (the features stay in
the last-level cache between calls, as the peers are timed); "cold" the median of 31 calls
each after reading a 64 MiB array, which evicts this machine's 32 MiB L3 (as in the
bench, where the other programs run between two forwards).  Used for the time-per-box
notes in docs/performance.md.  ``--step`` times the training step of the bench's
forward+backward (``timing.training_step``) instead of the forward.
"""

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jax_roialign as jr
from jax_roialign.tools.arg_specs import WORKLOADS
from jax_roialign.tools.bench.timing import median_seconds, training_step

EVICT = np.ones(64 * 2**20 // 4, np.float32)


def cold_seconds(fn, repeats: int) -> float:
    """Median time of fn() with the caches emptied of its data before each call."""
    times = []
    for _ in range(repeats):
        EVICT.sum()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def timed_call(k: int, step: bool):
    """A call of the compiled forward (or training step) on fpn-p3-sr2 with k boxes."""
    w = WORKLOADS["fpn-p3-sr2"].with_boxes(k)
    x, boxes, idx = (jnp.asarray(a) for a in w.arrays())

    def pool(x, b):
        return jr.roi_align(x, b, w.output_size, batch_indices=idx, impl="cpu", **w.kwargs())

    if not step:
        forward = jax.jit(pool).lower(x, boxes).compile()
        return lambda: forward(x, boxes).block_until_ready()
    c = jnp.asarray(np.random.default_rng(1).standard_normal(jax.eval_shape(pool, x, boxes).shape), x.dtype)
    compiled = jax.jit(training_step(pool)).lower(c, x, boxes).compile()
    return lambda: jax.block_until_ready(compiled(c, x, boxes))


def main(argv: list[str]) -> None:
    step = "--step" in argv
    for k in [int(a) for a in argv if a != "--step"] or [64, 128, 256, 512, 1024]:
        call = timed_call(k, step)
        warm, cold = median_seconds(call, 51), cold_seconds(call, 31)
        per_box = f"{1e6 * warm / k:.1f} and {1e6 * cold / k:.1f} us/box"
        print(f"K={k}: warm {1e3 * warm:.3f} ms, cold {1e3 * cold:.3f} ms ({per_box})")


if __name__ == "__main__":
    main(sys.argv[1:])
