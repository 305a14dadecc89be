"""loop_sum against the same sum written as a static Python loop, under every transformation.

The term reads one row of a feature table per box with a weight that depends smoothly
on per-box parameters, like a bilinear tap; the static sum is plain JAX, so JAX's own
derivatives of it are the reference for every rule of the primitives.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

from jax_roialign.core.loop_sum import Term, loop_sum

N, H, C, K, T = 2, 7, 3, 5, 6
RNG = np.random.default_rng(0)
X = RNG.standard_normal((N, H, C))
P = RNG.uniform(0.1, 1.0, K)
Q = RNG.standard_normal(K)
IDX = RNG.integers(0, N, K).astype(np.int32)
ROWS = RNG.integers(0, H, (K, T)).astype(np.int32)
G = RNG.standard_normal((K, C))
COUNTS = np.array([1, 4, 6], np.int32)


def term_fn(t, x, params, consts):
    p, q = params
    idx, rows = consts
    return (jnp.sin(p * (t + 1.0)) * q)[:, None] * x[idx, rows[:, t]]


def term_transpose(t, ct, params, consts, shapes):
    p, q = params
    idx, rows = consts
    return jnp.zeros(shapes.shape, shapes.dtype).at[idx, rows[:, t]].add((jnp.sin(p * (t + 1.0)) * q)[:, None] * ct)


TERMS = {"autodiff transpose": Term(term_fn), "hand-written transpose": Term(term_fn, term_transpose)}


def _ours(term):
    def f(x, p, q, n=4):
        return loop_sum(term, jnp.int32(n) if isinstance(n, int) else n, x, (p, q), (IDX, ROWS))

    return f


def _ref(x, p, q, n=4):
    return sum(term_fn(t, x, (p, q), (IDX, ROWS)) for t in range(n))


def _loss(f):
    return lambda x, p, q: jnp.vdot(f(x, p, q), G)


def _checks(f, x, p, q):
    """name -> thunk computing a pytree with f (ours or the reference)."""
    xb, pb, qb = jnp.stack([x, 2 * x, -x]), jnp.stack([p, 0.5 * p, p + 0.1]), jnp.stack([q, -q, q])
    loss = _loss(f)
    return {
        "forward": lambda: f(x, p, q),
        "jit": lambda: jax.jit(f)(x, p, q),
        "grad": lambda: jax.grad(loss, (0, 1, 2))(x, p, q),
        "jvp": lambda: jax.jvp(f, (x, p, q), (x, p, q)),
        "jacfwd params": lambda: jax.jacfwd(f, 1)(x, p, q),
        "jacrev params": lambda: jax.jacrev(f, 1)(x, p, q),
        "linear_transpose": lambda: jax.linear_transpose(lambda x: f(x, p, q), x)(G),
        "hessian features": lambda: jax.hessian(lambda x: jnp.sum(f(x, p, q) ** 2))(x),
        "hessian params": lambda: jax.hessian(lambda p: jnp.sum(f(x, p, q) ** 2))(p),
        "grad of grad features": lambda: jax.grad(lambda x: jnp.sum(jax.grad(loss)(x, p, q) ** 2 * x))(x),
        "grad params of grad features": lambda: jax.grad(lambda p: jnp.sum(jax.grad(loss)(x, p, q) ** 2))(p),
        "grad features of grad params": lambda: jax.grad(lambda x: jnp.sum(jax.grad(loss, 1)(x, p, q) ** 2))(x),
        "jacfwd(jacrev) features, params": lambda: jax.jacfwd(jax.jacrev(loss, 0), 1)(x, p, q),
        "checkpoint": lambda: jax.grad(jax.checkpoint(loss), (0, 1))(x, p, q),
        "vmap features": lambda: jax.vmap(lambda x: f(x, p, q))(xb),
        "vmap params": lambda: jax.vmap(lambda p: f(x, p, q))(pb),
        "vmap(grad)": lambda: jax.vmap(jax.grad(loss, (0, 1)))(xb, pb, qb),
        "grad(vmap) params": lambda: jax.grad(lambda pb: jnp.sum(jax.vmap(lambda p: f(x, p, q))(pb) ** 2))(pb),
        "grad(vmap) features": lambda: jax.grad(lambda x: jnp.sum(jax.vmap(lambda p: f(x, p, q))(pb) ** 2))(x),
        "vmap(vmap)": lambda: jax.vmap(jax.vmap(f, (None, 0, None)), (0, None, None))(xb, pb, q),
        "scan": lambda: jax.grad(
            lambda x: jax.lax.scan(lambda c, _: (0.5 * c + f(c, p, q).sum(), None), x, None, length=2)[0].sum()
        )(x),
    }


NAMES = list(_checks(_ref, X, P, Q))


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("term", list(TERMS))
def test_every_transformation_matches_the_static_sum(term):
    x, p, q = jnp.asarray(X), jnp.asarray(P), jnp.asarray(Q)
    ours, ref = _checks(_ours(TERMS[term]), x, p, q), _checks(_ref, x, p, q)
    for name in NAMES:
        got, want = jax.tree_util.tree_leaves(ours[name]()), jax.tree_util.tree_leaves(ref[name]())
        assert len(got) == len(want), name
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.usefixtures("x64")
def test_batched_trip_counts_mask_each_elements_surplus_terms():
    x, p, q = jnp.asarray(X), jnp.asarray(P), jnp.asarray(Q)
    f = _ours(TERMS["hand-written transpose"])
    got = jax.vmap(lambda n: f(x, p, q, n))(jnp.asarray(COUNTS))
    want = jnp.stack([_ref(x, p, q, int(n)) for n in COUNTS])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    grad = jax.grad(lambda x: jnp.sum(jax.vmap(lambda n: f(x, p, q, n))(jnp.asarray(COUNTS)) ** 2))(x)
    grad_ref = jax.grad(lambda x: jnp.sum(jnp.stack([_ref(x, p, q, int(n)) for n in COUNTS]) ** 2))(x)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.usefixtures("x64")
def test_no_terms_and_a_traced_count():
    x, p, q = jnp.asarray(X), jnp.asarray(P), jnp.asarray(Q)
    f = _ours(TERMS["autodiff transpose"])
    assert not np.any(np.asarray(f(x, p, q, 0)))
    np.testing.assert_allclose(jax.jit(lambda n: f(x, p, q, n))(jnp.int32(T)), _ref(x, p, q, T), rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_exports_with_its_gradient():
    x, p, q = jnp.asarray(X), jnp.asarray(P), jnp.asarray(Q)
    grad = jax.jit(jax.grad(_loss(_ours(TERMS["autodiff transpose"])), (0, 1)))
    restored = export.deserialize(export.export(grad)(x, p, q).serialize())
    for got, want in zip(restored.call(x, p, q), jax.grad(_loss(_ref), (0, 1))(x, p, q), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
