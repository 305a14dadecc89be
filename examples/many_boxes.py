"""Scale check: roi_align forward and backward on many boxes, reporting time and peak memory.

    python examples/many_boxes.py --boxes 200000 --channels 16

Large box counts run in chunks of bounded working set (jax_roialign.core.guards), so peak
memory grows with the output and the features, not with intermediates.
"""

from __future__ import annotations

import argparse
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

import jax_roialign as jr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=200_000)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--map", type=int, default=64, help="feature map height and width")
    parser.add_argument("--mode", default="avg", choices=["avg", "max"])
    parser.add_argument("--sampling-ratio", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, args.map, args.map, args.channels)), jnp.float32)
    corner = rng.uniform(0, 8 * args.map * 0.8, (args.boxes, 2))
    boxes = jnp.asarray(np.concatenate([corner, corner + rng.uniform(8, 200, (args.boxes, 2))], 1), jnp.float32)
    idx = jnp.asarray(rng.integers(0, 2, args.boxes), jnp.int32)

    def pool(x, b):
        return jr.roi_align(
            x, b, 7, batch_indices=idx, spatial_scale=1 / 8, sampling_ratio=args.sampling_ratio, mode=args.mode
        )

    start = time.perf_counter()
    out = jax.jit(pool)(x, boxes).block_until_ready()
    forward = time.perf_counter() - start
    start = time.perf_counter()
    gx, gb = jax.jit(jax.grad(lambda x, b: pool(x, b).sum(), argnums=(0, 1)))(x, boxes)
    gb.block_until_ready()
    backward = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(
        f"boxes={args.boxes} channels={args.channels} map={args.map} mode={args.mode} "
        f"sampling_ratio={args.sampling_ratio}: output {out.shape}, forward {forward:.1f} s (with compile), "
        f"forward+backward {backward:.1f} s (with compile), peak RSS {peak_gb:.2f} GB, "
        f"gradients finite: {bool(jnp.isfinite(gx).all() and jnp.isfinite(gb).all())}"
    )


if __name__ == "__main__":
    main()
