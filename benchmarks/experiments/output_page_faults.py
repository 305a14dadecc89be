"""Minor page faults per call of the jitted fpn-p3-sr2 forward, or its features' gradient, at several K.

    python benchmarks/experiments/output_page_faults.py 512 1024 2048
    python benchmarks/experiments/output_page_faults.py --backward 64 128 512
    python benchmarks/experiments/output_page_faults.py --xla 512 1024 2048

One fault per 4 KiB page (or per 2 MiB page where the CPU kernels advised huge pages) of a
result means the buffer was freshly mapped: glibc maps blocks above its mmap threshold (at
most 32 MiB by default) fresh on every call and unmaps them on free, and below it reuses
freed blocks depending on the process's allocation history.  Runs ``impl=None`` (the CPU
kernels on a CPU), or the XLA path with ``--xla``; the median of 21 calls after a warm-up.
"""

import resource
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jax_roialign as jr
from jax_roialign.tools.arg_specs import WORKLOADS


def measure(k: int, backward: bool, impl: str | None) -> tuple[float, float]:
    """(median seconds, mean minor page faults) per call for k boxes."""
    w = WORKLOADS["fpn-p3-sr2"].with_boxes(k)
    x, boxes, idx = (jnp.asarray(a) for a in w.arrays())

    def forward(x, b):
        return jr.roi_align(x, b, 7, batch_indices=idx, impl=impl, **w.kwargs())

    if backward:
        c = jnp.ones(jax.eval_shape(forward, x, boxes).shape, x.dtype)
        grad = jax.jit(jax.grad(lambda x, b: jnp.vdot(forward(x, jax.lax.stop_gradient(b)), c)))
        f = grad.lower(x, boxes).compile()
    else:
        f = jax.jit(forward).lower(x, boxes).compile()
    jax.block_until_ready(f(x, boxes))
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    times = []
    for _ in range(21):
        t0 = time.perf_counter()
        jax.block_until_ready(f(x, boxes))
        times.append(time.perf_counter() - t0)
    r1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    return float(np.median(times)), (r1 - r0) / 21


def main(argv: list[str]) -> None:
    backward = "--backward" in argv
    impl = "xla" if "--xla" in argv else None
    for k in [int(a) for a in argv if not a.startswith("--")]:
        seconds, faults = measure(k, backward, impl)
        print(
            f"K {k}: {'features gradient' if backward else 'forward'} {1e3 * seconds:.2f} ms/call "
            f"({1e6 * seconds / k:.1f} us/box), {faults:.0f} minor faults/call",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
