"""Each pass of RoIAlign on one implementation: forward, features' gradient, boxes' gradient,
both, and the training step (the output with the features' gradient, as the bench times it).

    python benchmarks/experiments/cpu_passes.py cpu fpn-p3-sr2 mask-p2 many-boxes
    python benchmarks/experiments/cpu_passes.py xla fpn-p3-sr2-max

The gradients are of <out, c> for a fixed cotangent c (a linear op's gradient does not
depend on its value, so XLA drops the forward from the features' one; the step keeps it
and, for the max modes, needs both the value and the winners); medians of 7
calls after a warm-up (``_timing.time_compiled``).  Used for the CPU kernels' development
notes in docs/performance.md.
"""

import sys

import jax
import jax.numpy as jnp
from _timing import time_compiled

import jax_roialign as jr
from jax_roialign.tools.arg_specs import WORKLOADS
from jax_roialign.tools.bench.timing import training_step


def passes(name: str, impl: str) -> dict[str, float]:
    """{pass: median ms} of one workload on one implementation."""
    w = WORKLOADS[name]
    x, boxes, idx = (jnp.asarray(a) for a in w.arrays())

    def pool(x, b):
        return jr.roi_align(x, b, w.output_size, batch_indices=idx, impl=impl, **w.kwargs())

    c = jnp.ones(jax.eval_shape(pool, x, boxes).shape, x.dtype)
    sg = jax.lax.stop_gradient
    programs = {
        "forward": (pool, (x, boxes)),
        "grad features": (jax.grad(lambda x, b, c: jnp.vdot(pool(x, sg(b)), c)), (x, boxes, c)),
        "grad boxes": (jax.grad(lambda x, b, c: jnp.vdot(pool(sg(x), b), c), argnums=1), (x, boxes, c)),
        "grad both": (jax.grad(lambda x, b, c: jnp.vdot(pool(x, b), c), argnums=(0, 1)), (x, boxes, c)),
        "step": (training_step(pool), (c, x, boxes)),
    }
    return {label: 1e3 * time_compiled(f, args)[1] for label, (f, args) in programs.items()}


def main(impl: str, names: list[str]) -> None:
    for name in names:
        times = passes(name, impl)
        print(f"{name} [{impl}]: " + "  ".join(f"{label} {ms:.1f} ms" for label, ms in times.items()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] or ["fpn-p3-sr2", "fpn-p3-adaptive", "mask-p2", "many-boxes"])
