"""The shared ps_roi_align / ps_roi_pool test base on the XLA implementation (tests/kernels/test_ps_roi.py: Pallas)."""

import jax.numpy as jnp
import numpy as np

import jax_roialign as jr
from tests.ps_roi_base import PSRoITestBase


class TestPSRoIXla(PSRoITestBase):
    impl = "xla"


def test_impl_none_runs_xla():
    """impl=None runs the XLA path (the Pallas one only when asked for: tests/kernels/test_ps_roi.py)."""
    x = jnp.ones((1, 6, 7, 8), jnp.float32)
    boxes = jnp.asarray([[1.0, 1.0, 5.0, 4.0]], jnp.float32)
    np.testing.assert_array_equal(jr.ps_roi_align(x, boxes, 2), jr.ps_roi_align(x, boxes, 2, impl="xla"))
