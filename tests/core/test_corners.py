"""core.corners: corner_max's share code against autodiff of its combination."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jax_roialign.core import corners


def test_encoded_shares_are_autodiffs_shares_on_every_tie_pattern():
    """Every 4-tuple over {-inf, -1, 0, 1, inf, nan}: the decoded shares equal jax.vjp's of the
    corner_max combination (jnp.maximum's tie rule), including NaN and infinite terms."""
    values = [-np.inf, -1.0, 0.0, 1.0, np.inf, np.nan]
    grid = np.array(list(itertools.product(values, repeat=4)), np.float32).T
    terms = [jnp.asarray(row) for row in grid]
    _, pullback = jax.vjp(lambda *t: corners.combine_terms(list(t), corner=True), *terms)
    want = pullback(jnp.ones_like(terms[0]))
    got = corners.decode_shares(jax.jit(corners.encode_shares)(terms), jnp.float32)
    chex.assert_trees_all_equal(got, list(want))
