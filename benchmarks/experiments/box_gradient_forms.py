"""The box gradient's core on fpn-p3-sr2 shapes: the weights' cotangents of the tap sum, in several forms.

    python benchmarks/experiments/box_gradient_forms.py

D[k, p, q, a, b] = sum_c ct[k, p, q, c] * x[image[k], ry[k, p, a], rx[k, q, b], c] for the 4 x 4 taps,
then dwy = sum_{q, b} wx D and dwx = sum_{p, a} wy D ("current" is xla/tap_sum.py's loop of 16
fused gather-reduces); "interp" forms interpolate along one axis first and reduce per tap of
the other.  Prints median ms of 7 calls, compile s, temporaries and the error against "current".
"""

import jax
import jax.numpy as jnp
import numpy as np
from _timing import time_compiled  # the script's folder is on sys.path

K, P, T, C, N, H, W = 512, 7, 4, 256, 2, 100, 136
rng = np.random.default_rng(0)
x = jnp.asarray(rng.standard_normal((N, H, W, C)), jnp.float32)
ct = jnp.asarray(rng.standard_normal((K, P, P, C)), jnp.float32)
img = jnp.asarray(rng.integers(0, N, K), jnp.int32)
ry = jnp.asarray(rng.integers(0, H, (K, P, T)), jnp.int32)
rx = jnp.asarray(rng.integers(0, W, (K, P, T)), jnp.int32)
wy = jnp.asarray(rng.random((K, P, T)), jnp.float32)
wx = jnp.asarray(rng.random((K, P, T)), jnp.float32)
image_index = img[:, None, None]


def current(ct, x, wy, wx):
    def tap(step, d):
        a, b = step // T, step % T
        rows = jax.lax.dynamic_index_in_dim(ry, a, 2, keepdims=False)
        cols = jax.lax.dynamic_index_in_dim(rx, b, 2, keepdims=False)
        v = jnp.sum(ct * x[image_index, rows[:, :, None], cols[:, None, :]], axis=-1)
        return jax.lax.dynamic_update_index_in_dim(d, v, step, 3)

    d = jax.lax.fori_loop(0, T * T, tap, jnp.zeros((K, P, P, T * T), ct.dtype)).reshape(K, P, P, T, T)
    return jnp.einsum("kpqab,kqb->kpa", d, wx), jnp.einsum("kpqab,kpa->kqb", d, wy)


def interp(ct, x, wy, wx):
    def row(a, dwy):
        rows = jax.lax.dynamic_index_in_dim(ry, a, 2, keepdims=False)
        r = sum(wx[:, None, :, b, None] * x[image_index, rows[:, :, None], rx[:, None, :, b]] for b in range(T))
        return jax.lax.dynamic_update_index_in_dim(dwy, jnp.sum(ct * r, axis=(2, 3)), a, 2)

    def col(b, dwx):
        cols = jax.lax.dynamic_index_in_dim(rx, b, 2, keepdims=False)
        s = sum(wy[:, :, None, a, None] * x[image_index, ry[:, :, None, a], cols[:, None, :]] for a in range(T))
        return jax.lax.dynamic_update_index_in_dim(dwx, jnp.sum(ct * s, axis=(1, 3)), b, 2)

    dwy = jax.lax.fori_loop(0, T, row, jnp.zeros((K, P, T), ct.dtype))
    dwx = jax.lax.fori_loop(0, T, col, jnp.zeros((K, P, T), ct.dtype))
    return dwy, dwx


def interp2(ct, x, wy, wx):
    # reduce over c first (fused), then over q / p in a second small reduce
    def row(a, dwy):
        rows = jax.lax.dynamic_index_in_dim(ry, a, 2, keepdims=False)
        r = sum(wx[:, None, :, b, None] * x[image_index, rows[:, :, None], rx[:, None, :, b]] for b in range(T))
        return jax.lax.dynamic_update_index_in_dim(dwy, jnp.sum(jnp.sum(ct * r, axis=3), axis=2), a, 2)

    def col(b, dwx):
        cols = jax.lax.dynamic_index_in_dim(rx, b, 2, keepdims=False)
        s = sum(wy[:, :, None, a, None] * x[image_index, ry[:, :, None, a], cols[:, None, :]] for a in range(T))
        return jax.lax.dynamic_update_index_in_dim(dwx, jnp.sum(jnp.sum(ct * s, axis=3), axis=1), b, 2)

    dwy = jax.lax.fori_loop(0, T, row, jnp.zeros((K, P, T), ct.dtype))
    dwx = jax.lax.fori_loop(0, T, col, jnp.zeros((K, P, T), ct.dtype))
    return dwy, dwx


def d_fused(ct, x, wy, wx):
    """D of all 16 taps as one gather and one channel reduction."""
    g = x[img[:, None, None, None, None], ry[:, :, None, :, None], rx[:, None, :, None, :]]  # K P Q a b C
    d = jnp.sum(ct[:, :, :, None, None, :] * g, axis=-1)
    return jnp.einsum("kpqab,kqb->kpa", d, wx), jnp.einsum("kpqab,kpa->kqb", d, wy)


def d_unrolled(ct, x, wy, wx):
    """D tap by tap, unrolled in Python (16 gather-reduces in one program)."""
    taps = [
        [jnp.sum(ct * x[image_index, ry[:, :, None, a], rx[:, None, :, b]], axis=-1) for b in range(T)]
        for a in range(T)
    ]
    d = jnp.stack([jnp.stack(row, -1) for row in taps], -2)
    return jnp.einsum("kpqab,kqb->kpa", d, wx), jnp.einsum("kpqab,kpa->kqb", d, wy)


def d_einsum(ct, x, wy, wx):
    """D as one gather and an einsum over the channels."""
    g = x[img[:, None, None, None, None], ry[:, :, None, :, None], rx[:, None, :, None, :]]
    d = jnp.einsum("kpqabc,kpqc->kpqab", g, ct)
    return jnp.einsum("kpqab,kqb->kpa", d, wx), jnp.einsum("kpqab,kpa->kqb", d, wy)


def d_per_row_tap(ct, x, wy, wx):
    """D one row tap at a time (a loop of 4), all column taps of a row in one gather and einsum."""

    def row(a, d):
        rows = jax.lax.dynamic_index_in_dim(ry, a, 2, keepdims=False)
        v = jnp.einsum("kpqbc,kpqc->kpqb", x[img[:, None, None, None], rows[:, :, None, None], rx[:, None, :, :]], ct)
        return jax.lax.dynamic_update_index_in_dim(d, v, a, 3)

    d = jax.lax.fori_loop(0, T, row, jnp.zeros((K, P, P, T, T), ct.dtype))
    return jnp.einsum("kpqab,kqb->kpa", d, wx), jnp.einsum("kpqab,kpa->kqb", d, wy)


def main():
    ref = None
    for name, f in [
        ("current", current),
        ("fused", d_fused),
        ("unrolled", d_unrolled),
        ("einsum", d_einsum),
        ("per_row_tap", d_per_row_tap),
        ("interp", interp),
        ("interp2", interp2),
    ]:
        r, median_s, compile_s, temp_bytes = time_compiled(f, (ct, x, wy, wx))
        if ref is None:
            ref = r
        err = max(float(jnp.max(jnp.abs(got - want) / (1 + jnp.abs(want)))) for got, want in zip(r, ref, strict=True))
        print(
            f"{name:9s} {1e3 * median_s:7.1f} ms compile {compile_s:.2f}s"
            f" temp {temp_bytes / 2**20:.0f} MiB relerr {err:.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
