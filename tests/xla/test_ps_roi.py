"""The shared ps_roi_align / ps_roi_pool test base on the XLA implementation, and the missing Pallas kernel."""

import jax.numpy as jnp
import numpy as np
import pytest

import jax_roialign as jr
from tests.ps_roi_base import PSRoITestBase


class TestPSRoIXla(PSRoITestBase):
    impl = "xla"


def test_pallas_declines_and_none_runs_xla():
    """No Pallas kernel yet: impl="pallas" raises NotImplementedError naming the op; impl=None runs XLA."""
    x = jnp.ones((1, 6, 7, 8), jnp.float32)
    boxes = jnp.asarray([[1.0, 1.0, 5.0, 4.0]], jnp.float32)
    with pytest.raises(NotImplementedError, match="ps_roi_align has no Pallas kernel"):
        jr.ps_roi_align(x, boxes, 2, impl="pallas")
    np.testing.assert_array_equal(jr.ps_roi_align(x, boxes, 2), jr.ps_roi_align(x, boxes, 2, impl="xla"))
