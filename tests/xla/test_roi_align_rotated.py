"""The shared roi_align_rotated test base on the XLA implementation, and the missing Pallas kernel."""

import jax.numpy as jnp
import numpy as np
import pytest

import jax_roialign as jr
from tests.roi_align_rotated_base import RotatedTestBase


class TestRotatedXla(RotatedTestBase):
    impl = "xla"


def test_pallas_declines_and_none_runs_xla():
    """No Pallas kernel yet: impl="pallas" raises NotImplementedError naming the op; impl=None runs XLA."""
    x = jnp.ones((1, 6, 7, 2), jnp.float32)
    boxes = jnp.asarray([[3.0, 3.0, 4.0, 2.0, 30.0]], jnp.float32)
    with pytest.raises(NotImplementedError, match="roi_align_rotated has no Pallas kernel"):
        jr.roi_align_rotated(x, boxes, 2, impl="pallas")
    np.testing.assert_array_equal(jr.roi_align_rotated(x, boxes, 2), jr.roi_align_rotated(x, boxes, 2, impl="xla"))
