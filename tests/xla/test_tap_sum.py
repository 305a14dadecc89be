"""The avg tap sum: its reads against an einsum, its hand-written transposes against JAX's own."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core.loop_sum import Term, loop_sum
from jax_roialign.xla import tap_sum

N, H, W, C, K, P, Q = 2, 9, 11, 3, 5, 3, 4


def _taps(ty: int, tx: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((N, H, W, C)))
    image = jnp.asarray(rng.integers(0, N, K), jnp.int32)
    # Repeated rows and columns on purpose: a scatter must add, not overwrite.
    ry = jnp.asarray(rng.integers(0, H, (K, P, ty)), jnp.int32)
    rx = jnp.asarray(rng.integers(0, W, (K, Q, tx)), jnp.int32)
    wy = jnp.asarray(rng.uniform(-1, 1, (K, P, ty)))
    wx = jnp.asarray(rng.uniform(-1, 1, (K, Q, tx)))
    return x, image, (ry, wy), (rx, wx)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("ty,tx", [(1, 1), (4, 3)])
def test_read_taps_is_the_einsum(ty, tx):
    x, image, (ry, wy), (rx, wx) = _taps(ty, tx)
    taps = x[image[:, None, None, None, None], ry[:, :, :, None, None], rx[:, None, None, :, :]]
    want = jnp.einsum("kpaqbc,kpa,kqb->kpqc", taps, wy, wx)
    chex.assert_trees_all_close(tap_sum.read_taps(x, image, (ry, wy), (rx, wx)), want, rtol=1e-13, atol=1e-13)


def _problem(sampling_ratio: int, scale: float = 1.0):
    """Boxes whose adaptive bins span several chunks of rows and columns (extent up to 9)."""
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((N, 14, 15, C)))
    boxes = jnp.asarray([[0.5, 1.0, 14.0, 13.5], [2.0, 3.0, 6.0, 5.5], [-3.0, -2.0, 20.0, 18.0], [4.2, 0.3, 9.9, 12.7]])
    image = jnp.asarray([0, 1, 1, 0], jnp.int32)
    in_range = jnp.asarray([True, True, False, True])
    spec = RoIAlignSpec((3, 2), scale, sampling_ratio, True, "avg")
    return x, boxes, image, in_range, spec


def _autodiff_transpose_pool(x, boxes, image, in_range, spec):
    """avg_pool with JAX's transposes of the read (features and weights) instead of the hand-written ones."""
    _, h, w, _ = x.shape
    layout = tap_sum._Taps(spec, h, w)
    (ry, wy), (rx, wx), count, column_chunks = layout.tables(boxes)
    wy = jnp.where(in_range[:, None, None], wy, 0.0)
    return loop_sum(Term(tap_sum._Read(layout)), count, x, (wy, wx), (image, ry, rx, column_chunks))


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("sampling_ratio", [2, 0])
def test_hand_written_transpose_is_jaxs_transpose(sampling_ratio, monkeypatch):
    x, boxes, image, in_range, spec = _problem(sampling_ratio)
    count = tap_sum._Taps(spec, x.shape[1], x.shape[2]).tables(boxes)[2]
    if sampling_ratio == 0:
        assert int(count) > 1  # several chunks of the adaptive windows
    monkeypatch.setattr(tap_sum, "SCATTER_BYTES", 1)  # one box per scatter: the box chunking is exercised
    cot = jnp.asarray(np.random.default_rng(1).standard_normal((4, 3, 2, C)))

    def grads(pool):
        loss = lambda x, b: jnp.vdot(pool(x, b, image, in_range, spec), cot)  # noqa: E731
        return jax.jit(jax.grad(loss, argnums=(0, 1)))(x, boxes)

    ours, want = grads(tap_sum.avg_pool), grads(_autodiff_transpose_pool)
    chex.assert_trees_all_close(ours, want, rtol=1e-12, atol=1e-12)
    assert not np.any(np.asarray(ours[1][2]))  # a box outside the batch gets no gradient


def test_backward_is_bitwise_repeatable():
    x, boxes, image, in_range, spec = _problem(0)
    x, boxes = x.astype(jnp.float32), boxes.astype(jnp.float32)
    grad = jax.jit(
        jax.grad(lambda x, b: jnp.sum(jnp.sin(tap_sum.avg_pool(x, b, image, in_range, spec))), argnums=(0, 1))
    )
    first = grad(x, boxes)
    for _ in range(3):
        chex.assert_trees_all_equal(grad(x, boxes), first)
