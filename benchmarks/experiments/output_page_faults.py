"""Minor page faults per call of the jitted fpn-p3-sr2 forward at several K.

    python benchmarks/experiments/output_page_faults.py 512 1024 2048

One fault per 4 KiB page of the output means the buffer was freshly mapped by the allocator
(glibc maps blocks above its mmap threshold, at most 32 MiB by default, and unmaps them on free).
"""

import resource
import sys
import time

import jax
import jax.numpy as jnp

import jax_roialign as jr
from jax_roialign.tools.arg_specs import WORKLOADS


def measure(k):
    """Compile the forward for k boxes, warm it up once, then time 5 calls and count their minor faults.

    Returns the mean seconds and the mean minor page faults per call.
    """
    w = WORKLOADS["fpn-p3-sr2"].with_boxes(k)
    x, boxes, idx = (jnp.asarray(a) for a in w.arrays())

    def forward(x, b):
        return jr.roi_align(x, b, 7, batch_indices=idx, **w.kwargs())

    f = jax.jit(forward).lower(x, boxes).compile()
    jax.block_until_ready(f(x, boxes))
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    for _ in range(5):
        jax.block_until_ready(f(x, boxes))
    dt = (time.perf_counter() - t0) / 5
    r1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    return dt, (r1 - r0) / 5


def main(argv):
    for k in [int(a) for a in argv]:
        dt, faults = measure(k)
        print(
            k,
            f"{1e3 * dt:.1f} ms/call",
            faults,
            "minor faults/call",
            f"out {k * 49 * 256 * 4 / 2**20:.0f} MiB",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
