"""TEMPORARY STAND-IN for ``jax_roialign.core.loop_sum`` (being written on main); delete when it lands.

``loop_sum(term, n, linear, params)`` is the sum over t in [0, n) of ``term(t, linear,
params)`` for a traced int32 ``n >= 0``: the primitive behind sums with a data-dependent
number of terms (adaptive sampling grids).  ``term`` is a module-level function or a
functools.partial of one with hashable arguments, returns one array of fixed shape and
dtype, is linear in the pytree ``linear`` and differentiable in the float leaves of the
pytree ``params`` (integer leaves are constants).

This stand-in has the same signature and numbers, and memory independent of n, but
only the transformations a ``custom_vjp`` gives: jit, vmap, grad / vjp (first order)
and checkpoint.  Forward mode (jvp, jacfwd), higher orders, linear_transpose and
shard_map / export of the backward pass are what the real primitive adds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp


def _split(params):
    """(float leaves, other leaves, a function rebuilding params from both)."""
    leaves, treedef = jax.tree.flatten(params)
    is_float = tuple(jnp.issubdtype(jnp.result_type(leaf), jnp.inexact) for leaf in leaves)
    floats = [leaf for leaf, f in zip(leaves, is_float, strict=True) if f]
    others = [leaf for leaf, f in zip(leaves, is_float, strict=True) if not f]
    return floats, others, functools.partial(_join, treedef, is_float)


def _join(treedef, is_float, floats, others):
    floats, others = iter(floats), iter(others)
    return jax.tree.unflatten(treedef, [next(floats) if f else next(others) for f in is_float])


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _loop_sum(term, n, linear, floats, others):
    def body(t, acc):
        return acc + term(t, linear, floats, others)

    shape = jax.eval_shape(term, jnp.int32(0), linear, floats, others)
    return jax.lax.fori_loop(0, n, body, jnp.zeros(shape.shape, shape.dtype))


def _loop_sum_fwd(term, n, linear, floats, others):
    return _loop_sum(term, n, linear, floats, others), (n, linear, floats, others)


def _loop_sum_bwd(term, residuals, g):
    n, linear, floats, others = residuals

    def body(t, acc):
        _, pullback = jax.vjp(lambda lin, fl: term(t, lin, fl, others), linear, floats)
        return jax.tree.map(jnp.add, acc, pullback(g))

    zeros = jax.tree.map(jnp.zeros_like, (linear, floats))
    d_linear, d_floats = jax.lax.fori_loop(0, n, body, zeros)
    return None, d_linear, d_floats, None


_loop_sum.defvjp(_loop_sum_fwd, _loop_sum_bwd)


def _term_of_parts(term, join, t, linear, floats, others):
    return term(t, linear, join(floats, others))


def loop_sum(term: Callable, n: jax.Array, linear, params) -> jax.Array:
    """sum over t in [0, n) of term(t, linear, params); see the module docstring."""
    floats, others, join = _split(params)
    return _loop_sum(functools.partial(_term_of_parts, term, join), jnp.asarray(n, jnp.int32), linear, floats, others)
