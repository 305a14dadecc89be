"""The feature gradient's core on fpn-p3-sr2 shapes: the transpose of the tap sum, in several forms.

    python benchmarks/experiments/feature_transpose_forms.py

"current" is xla/tap_sum.py's form (one scatter-add per row tap of the (K, P, Q, 4, C)
updates); the others scatter all taps at once by flat pixel index, with ``segment_sum``,
sorted or not.  Prints median ms of 7 calls, compile s, temporaries and the error against "current".
"""

import jax
import jax.numpy as jnp
import numpy as np
from _timing import time_compiled  # the script's folder is on sys.path

K, P, T, C, N, H, W = 512, 7, 4, 256, 2, 100, 136
rng = np.random.default_rng(0)
g = jnp.asarray(rng.standard_normal((K, P, P, C)), jnp.float32)
img = jnp.asarray(np.sort(rng.integers(0, N, K)), jnp.int32)
y0 = rng.uniform(0, H - 34, K)
x0 = rng.uniform(0, W - 34, K)
ry = jnp.asarray(
    np.clip((y0[:, None, None] + np.arange(P)[None, :, None] * 4 + np.arange(T)[None, None, :]).astype(int), 0, H - 1),
    jnp.int32,
)
rx = jnp.asarray(
    np.clip((x0[:, None, None] + np.arange(P)[None, :, None] * 4 + np.arange(T)[None, None, :]).astype(int), 0, W - 1),
    jnp.int32,
)
wy = jnp.asarray(rng.random((K, P, T)), jnp.float32)
wx = jnp.asarray(rng.random((K, P, T)), jnp.float32)


def current(g, wy, wx):
    dx = jnp.zeros((N, H, W, C), g.dtype)

    def body(a, dx):
        row = jax.lax.dynamic_index_in_dim(ry, a, 2, keepdims=False)
        w_row = jax.lax.dynamic_index_in_dim(wy, a, 2, keepdims=False)
        upd = w_row[:, :, None, None, None] * wx[:, None, :, :, None] * g[:, :, :, None, :]
        return dx.at[img[:, None, None, None], row[:, :, None, None], rx[:, None, :, :]].add(upd)

    return jax.lax.fori_loop(0, T, body, dx)


def flat_ids():
    ids = (img[:, None, None, None, None] * H + ry[:, :, None, :, None]) * W + rx[:, None, :, None, :]  # K P Q a b
    return ids.reshape(-1)


def updates(g, wy, wx):
    return (wy[:, :, None, :, None, None] * wx[:, None, :, None, :, None] * g[:, :, :, None, None, :]).reshape(-1, C)


def segsum_sorted(g, wy, wx):
    ids = flat_ids()
    order = jnp.argsort(ids, stable=True)
    upd = updates(g, wy, wx)[order]
    return jax.ops.segment_sum(upd, ids[order], N * H * W, indices_are_sorted=True).reshape(N, H, W, C)


def segsum(g, wy, wx):
    return jax.ops.segment_sum(updates(g, wy, wx), flat_ids(), N * H * W).reshape(N, H, W, C)


def rowtap_sorted(g, wy, wx):
    dx = jnp.zeros((N * H * W, C), g.dtype)
    for a in range(T):
        ids = ((img[:, None, None, None] * H + ry[:, :, None, None, a]) * W + rx[:, None, :, :]).reshape(-1)
        order = jnp.argsort(ids, stable=True)
        upd = (wy[:, :, None, None, a, None] * wx[:, None, :, :, None] * g[:, :, :, None, :]).reshape(-1, C)
        dx = dx.at[ids[order]].add(upd[order], indices_are_sorted=True)
    return dx.reshape(N, H, W, C)


def main():
    ref = None
    for name, f in [
        ("current", current),
        ("segsum", segsum),
        ("segsum_sorted", segsum_sorted),
        ("rowtap_sorted", rowtap_sorted),
    ]:
        r, median_s, compile_s, temp_bytes = time_compiled(f, (g, wy, wx))
        if ref is None:
            ref = r
        err = float(jnp.max(jnp.abs(r - ref)))
        print(
            f"{name:14s} {1e3 * median_s:7.1f} ms compile {compile_s:.2f}s"
            f" temp {temp_bytes / 2**20:.0f} MiB maxerr {err:.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
