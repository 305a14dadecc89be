"""tap_sum: its hand-written backward pass against autodiff of the plain einsum form."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jax_roialign.xla.tap_sum import tap_sum

N, H, W, C, K, P, Q = 2, 9, 11, 3, 5, 3, 4


def _problem(ty: int, tx: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((N, H, W, C)))
    image = jnp.asarray(rng.integers(0, N, K), jnp.int32)
    # Repeated rows and columns on purpose: the scatter must add, not overwrite.
    ry = jnp.asarray(rng.integers(0, H, (K, P, ty)), jnp.int32)
    rx = jnp.asarray(rng.integers(0, W, (K, Q, tx)), jnp.int32)
    wy = jnp.asarray(rng.uniform(-1, 1, (K, P, ty)))
    wx = jnp.asarray(rng.uniform(-1, 1, (K, Q, tx)))
    return x, image, ry, wy, rx, wx


def _einsum_form(x, image, ry, wy, rx, wx):
    """The contract as written in tap_sum's docstring, differentiated by JAX itself."""
    taps = x[image[:, None, None, None, None], ry[:, :, :, None, None], rx[:, None, None, :, :]]
    return jnp.einsum("kpaqbc,kpa,kqb->kpqc", taps, wy, wx)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("ty,tx", [(1, 1), (2, 4), (4, 3)])
def test_forward_and_gradients_match_the_einsum_form(ty, tx):
    x, image, ry, wy, rx, wx = _problem(ty, tx)
    chex.assert_trees_all_close(tap_sum(x, image, ry, wy, rx, wx), _einsum_form(x, image, ry, wy, rx, wx), rtol=1e-13)
    cot = jnp.asarray(np.random.default_rng(1).standard_normal((K, P, Q, C)))

    def loss(fn, x, wy, wx):
        return jnp.vdot(fn(x, image, ry, wy, rx, wx), cot)

    ours = jax.grad(lambda *a: loss(tap_sum, *a), argnums=(0, 1, 2))(x, wy, wx)
    want = jax.grad(lambda *a: loss(_einsum_form, *a), argnums=(0, 1, 2))(x, wy, wx)
    chex.assert_trees_all_close(ours, want, rtol=1e-12, atol=1e-12)
    check_grads(lambda *a: tap_sum(jnp.asarray(a[0]), image, ry, a[1], rx, a[2]), (x, wy, wx), order=1, modes=("rev",))


@pytest.mark.usefixtures("x64")
def test_feature_gradient_alone_equals_the_full_one():
    """With the weights not perturbed the backward pass skips their cotangents; dx is unchanged."""
    x, image, ry, wy, rx, wx = _problem(2, 2)
    only_x = jax.grad(lambda x: jnp.sum(tap_sum(x, image, ry, wy, rx, wx) ** 2))(x)
    full = jax.grad(lambda x, wy: jnp.sum(tap_sum(x, image, ry, wy, rx, wx) ** 2), argnums=(0, 1))(x, wy)[0]
    np.testing.assert_array_equal(only_x, full)


def test_backward_is_bitwise_repeatable():
    x, image, ry, wy, rx, wx = (a.astype(jnp.float32) if a.dtype.kind == "f" else a for a in _problem(4, 4))
    grad = jax.jit(jax.grad(lambda x, wy: jnp.sum(jnp.sin(tap_sum(x, image, ry, wy, rx, wx))), argnums=(0, 1)))
    first = grad(x, wy)
    for _ in range(3):
        chex.assert_trees_all_equal(grad(x, wy), first)
