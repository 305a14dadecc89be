"""Issue 14's two ratio goals, each pair of programs timed in turn in one process.

    python benchmarks/experiments/goal_ratios.py [rounds]

- boxes: the step with gradients w.r.t. features and boxes over the one w.r.t. the
  features (fpn-p3-sr2, fpn-p3-adaptive, mask-p2, many-boxes);
- max: fpn-p3-sr2-max's step over fpn-p3-sr2's (mode "max" over "avg").

Each program is a training step as the bench times it (the output and the gradients of
<out, c> for a fixed random cotangent, ``timing.training_step``), on the CPU kernels.
``bench`` times the two modes in different workloads, minutes apart, on a machine whose
speed drifts by up to 2x; here each pair is interleaved (median of 21 timed calls each,
each after an untimed call of the same program: ``timing.interleaved_medians``), its order
reversed every other round.  One line per round; rounds default to 4.
With tcmalloc preloaded (README, "Large results on a CPU") the rounds agree within a few
percent; under glibc the fresh pages of each call's buffers spread them by up to 30%.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import jax_roialign as jr
from jax_roialign.tools.arg_specs import WORKLOADS
from jax_roialign.tools.bench.timing import interleaved_medians, training_step


def gradient(name: str, boxes_too: bool):
    """A call of the compiled training step of roi_align on the workload's arrays."""
    w = WORKLOADS[name]
    x, boxes, idx = (jnp.asarray(a) for a in w.arrays())

    def pool(x, b):
        return jr.roi_align(x, b, w.output_size, batch_indices=idx, impl="cpu", **w.kwargs())

    shape = jax.eval_shape(pool, x, boxes).shape
    c = jnp.asarray(np.random.default_rng(1).standard_normal(shape), x.dtype)
    compiled = jax.jit(training_step(pool, 2 if boxes_too else 1)).lower(c, x, boxes).compile()
    return lambda: jax.block_until_ready(compiled(c, x, boxes))


def pairs() -> dict[str, tuple]:
    """{goal label: (numerator call, denominator call)}."""
    out = {
        f"boxes/features {name}": (gradient(name, True), gradient(name, False))
        for name in ("fpn-p3-sr2", "fpn-p3-adaptive", "mask-p2", "many-boxes")
    }
    out["max/avg fpn-p3-sr2"] = (gradient("fpn-p3-sr2-max", False), gradient("fpn-p3-sr2", False))
    return out


def main(rounds: int) -> None:
    goals = pairs()
    for r in range(rounds):
        cells = []
        for label, (num, den) in goals.items():
            order = {"num": num, "den": den} if r % 2 == 0 else {"den": den, "num": num}
            m = interleaved_medians(order, 21)
            cells.append(f"{label} {1e3 * m['num']:.2f}/{1e3 * m['den']:.2f} = {m['num'] / m['den']:.2f}")
        print(f"round {r}: " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
