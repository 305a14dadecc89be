"""Compile time of a jitted roi_align on fpn-p3 against output size and sampling ratio.

    python -m jax_roialign bench --compile       # prints a Markdown table

Each cell is the wall time of ``jax.jit(f).lower(...).compile()`` for the forward pass
and for the gradient w.r.t. the features (boxes detached), in a fresh process per cell
so that no compilation cache is shared.  Shapes: fpn-p3 from jax_roialign.tools.arg_specs.
"""

from __future__ import annotations

import json
import subprocess
import sys

OUTPUT_SIZES = (7, 14)
SAMPLING_RATIOS = (1, 2, 4, 0)

_CELL = """
import dataclasses, json, sys, time
import jax, jax.numpy as jnp
import jax_roialign as jr
from jax_roialign.tools.arg_specs import WORKLOADS
out, ratio = int(sys.argv[1]), int(sys.argv[2])
w = dataclasses.replace(WORKLOADS["fpn-p3-sr2"], output_size=out, sampling_ratio=ratio)
x, boxes, idx = (jnp.asarray(a) for a in w.arrays())
pool = lambda x, b: jr.roi_align(x, b, out, batch_indices=idx, **w.kwargs())
times = {}
for name, fn in (("forward", pool), ("backward", jax.grad(lambda x, b: pool(x, jax.lax.stop_gradient(b)).sum()))):
    start = time.perf_counter()
    jax.jit(fn).lower(x, boxes).compile()
    times[name] = time.perf_counter() - start
print(json.dumps(times))
"""


def compile_seconds(output_size: int, sampling_ratio: int) -> dict[str, float]:
    """{"forward": s, "backward": s} measured in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _CELL, str(output_size), str(sampling_ratio)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table() -> None:
    """Measure every (output size, sampling ratio) cell and print the table row by row."""
    print("| output | sampling_ratio | forward compile s | fwd+bwd compile s |")
    print("|---:|---:|---:|---:|")
    for out in OUTPUT_SIZES:
        for ratio in SAMPLING_RATIOS:
            t = compile_seconds(out, ratio)
            label = "adaptive" if ratio <= 0 else str(ratio)
            print(f"| {out}x{out} | {label} | {t['forward']:.1f} | {t['backward']:.1f} |", flush=True)
