"""Sharding roi_align over devices: NamedSharding under jit, shard_map, vmap and pmap.

Run as ``python examples/sharding.py``: it asks XLA for 8 host (CPU) devices, shards
the batch axis of the features and of per-image padded boxes the same way, and checks
each sharded result against the single-device one, printing the largest difference.
Boxes only read their own image, so sharding the batch needs no communication.
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

import jax_roialign as jr  # noqa: E402


def pool(features: jax.Array, boxes: jax.Array) -> jax.Array:
    """(N, H, W, C) features and per-image (N, R, 4) boxes -> (N, R, 7, 7, C)."""
    return jr.roi_align(features, boxes, 7, spatial_scale=0.25, sampling_ratio=2)


def main() -> float:
    n_dev = jax.device_count()
    rng = np.random.default_rng(0)
    features = jnp.asarray(rng.standard_normal((n_dev, 32, 40, 8)), jnp.float32)
    corner = rng.uniform(0, 100, (n_dev, 16, 2))
    boxes = jnp.asarray(np.concatenate([corner, corner + rng.uniform(8, 60, (n_dev, 16, 2))], -1), jnp.float32)
    reference = jax.jit(pool)(features, boxes)

    mesh = Mesh(np.array(jax.devices()), ("batch",))
    batch = NamedSharding(mesh, PartitionSpec("batch"))
    sharded = jax.jit(pool, out_shardings=batch)(jax.device_put(features, batch), jax.device_put(boxes, batch))

    mapped = jax.jit(
        jax.shard_map(
            pool, mesh=mesh, in_specs=(PartitionSpec("batch"), PartitionSpec("batch")), out_specs=PartitionSpec("batch")
        )
    )(features, boxes)

    # An extra leading axis under vmap, and one image per device under pmap.
    vmapped = jax.vmap(pool)(features[:, None], boxes[:, None])[:, 0]
    pmapped = jax.pmap(pool)(features[:, None], boxes[:, None])[:, 0]

    worst = 0.0
    for name, out in [("jit + NamedSharding", sharded), ("shard_map", mapped), ("vmap", vmapped), ("pmap", pmapped)]:
        diff = float(jnp.max(jnp.abs(out - reference)))
        worst = max(worst, diff)
        print(f"{name:20s} devices={len(out.sharding.device_set)} max |diff| = {diff:.3g}")
    return worst


if __name__ == "__main__":
    raise SystemExit(0 if main() <= 1e-4 else 1)  # vmap regroups float32 sums; the rest are bitwise
