"""core.winners: the search's winners, their dtype and their range."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import winners
from tests import cases


@pytest.mark.parametrize(
    "sampling_ratio,dtype", [(1, jnp.int8), (2, jnp.int8), (11, jnp.int8), (12, jnp.int32), (0, jnp.int32)]
)
def test_winners_are_int8_up_to_eleven_samples_a_side(sampling_ratio, dtype):
    """Every index of an 11 x 11 grid (at most 120) and -1 fit int8; larger and adaptive grids
    (whose trip count is known only at run time) keep int32."""
    spec = RoIAlignSpec((2, 3), 1.0, sampling_ratio, True, "max")
    x = jnp.asarray(cases.random_features(0, (1, 6, 7, 3), "float32"))
    boxes = jnp.asarray([[0.5, 0.5, 6.0, 5.0], [1.0, 2.0, 3.0, 3.5]])
    image = jnp.zeros(2, jnp.int32)
    by, bx, n_samples = winners.sample_geometry(boxes, spec)
    _, arg = jax.jit(lambda x: winners.search(x, image, by, bx, n_samples, spec))(x)
    assert winners.winner_dtype(spec) == arg.dtype == dtype
    grid = np.asarray(n_samples)[:, None, None, None]
    assert ((np.asarray(arg) >= 0) & (np.asarray(arg) < grid)).all()
