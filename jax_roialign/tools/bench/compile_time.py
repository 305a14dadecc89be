"""First-call time (trace + compile) of a jitted roi_align on fpn-p3, per convention.

    python -m jax_roialign bench --compile       # prints a Markdown table

Each cell is the wall time of ``jax.jit(f).lower(...).compile()`` for three functions of
the fpn-p3 workload (``jax_roialign.tools.arg_specs``): the forward pass, and the forward
with the gradient w.r.t. the features (boxes detached) or w.r.t. features and boxes (a
training step, ``timing.training_step``).  Every
cell runs in a fresh interpreter, so no compilation cache is shared; its three functions
are compiled one after the other in it, as a user's first calls would be.
"""

from __future__ import annotations

import json
import subprocess
import sys

# (output size, sampling ratio, mode): every mode at a fixed and an adaptive grid, and the mask head.
CELLS: tuple[tuple[int, int, str], ...] = (
    (7, 2, "avg"),
    (7, 0, "avg"),
    (7, 2, "max"),
    (7, 0, "max"),
    (7, 2, "corner_max"),
    (7, 0, "corner_max"),
    (14, 2, "avg"),
    (14, 0, "avg"),
)
PASSES: tuple[str, ...] = ("forward", "features", "features_boxes")

_CELL = """
import dataclasses, json, sys, time
import jax, jax.numpy as jnp
import jax_roialign as jr
from jax_roialign.tools.arg_specs import WORKLOADS
from jax_roialign.tools.bench.timing import training_step
out, ratio, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
w = dataclasses.replace(WORKLOADS["fpn-p3-sr2"], output_size=out, sampling_ratio=ratio, mode=mode)
x, boxes, idx = (jnp.asarray(a) for a in w.arrays())
pool = lambda x, b: jr.roi_align(x, b, out, batch_indices=idx, **w.kwargs())
cot = jax.ShapeDtypeStruct(jax.eval_shape(pool, x, boxes).shape, x.dtype)
functions = {
    "forward": (pool, (x, boxes)),
    "features": (training_step(pool), (cot, x, boxes)),
    "features_boxes": (training_step(pool, 2), (cot, x, boxes)),
}
times = {}
for name, (fn, args) in functions.items():
    start = time.perf_counter()
    jax.jit(fn).lower(*args).compile()
    times[name] = time.perf_counter() - start
print(json.dumps(times))
"""


def compile_seconds(output_size: int, sampling_ratio: int, mode: str) -> dict[str, float]:
    """{pass: seconds} for the PASSES of one cell, measured in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _CELL, str(output_size), str(sampling_ratio), mode],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table() -> list[dict]:
    """Measure every cell, print the Markdown table row by row, and return the rows."""
    print("| output | sampling_ratio | mode | forward s | fwd+bwd (features) s | fwd+bwd (features, boxes) s |")
    print("|---:|---:|---|---:|---:|---:|")
    rows = []
    for out, ratio, mode in CELLS:
        t = compile_seconds(out, ratio, mode)
        rows.append({"output_size": out, "sampling_ratio": ratio, "mode": mode, **t})
        label = "adaptive" if ratio <= 0 else str(ratio)
        cells = " | ".join(f"{t[p]:.1f}" for p in PASSES)
        print(f"| {out}x{out} | {label} | {mode} | {cells} |", flush=True)
    return rows
