"""Properties of rotated and position-sensitive pooling (hypothesis), on fixed shapes so that jit compiles once."""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import jax_roialign as jr

H, W, C = 10, 12, 2
OUT = (3, 2)
# No subnormals: XLA's CPU backend flushes them to zero (a property of the backend, not of the ops).
feature_maps = hnp.arrays(np.float32, (1, H, W, C), elements=st.floats(-4, 4, width=32, allow_subnormal=False))
centre = st.tuples(st.floats(4.0, 7.0), st.floats(4.0, 5.5))
size = st.tuples(st.floats(1.0, 4.0), st.floats(1.0, 4.0))
angle = st.floats(-360.0, 360.0)
rotated = jax.jit(lambda x, b: jr.roi_align_rotated(x, b, OUT, sampling_ratio=0))


def rotated_box(c, s, a) -> jnp.ndarray:
    return jnp.asarray([[c[0], c[1], s[0], s[1], a]], jnp.float32)


@settings(max_examples=15, deadline=None)
@given(st.floats(-3, 3, width=32, allow_subnormal=False), centre, size, angle)
def test_rotated_constant_map_gives_the_constant_inside(value, c, s, a):
    """A box whose every sample lies on the map (half-diagonal <= 2.9 from a centre >= 3.5 px from the border)."""
    out = rotated(jnp.full((1, H, W, C), value, jnp.float32), rotated_box(c, s, a))
    np.testing.assert_allclose(out, value, rtol=1e-5, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(feature_maps, centre, size, angle)
def test_rotated_half_turn_reverses_the_bins(x, c, s, a):
    """Turning a box by 180 degrees maps sample (p, i) to (out_h - 1 - p, grid - 1 - i): the output reversed."""
    out = rotated(jnp.asarray(x), rotated_box(c, s, a))
    turned = rotated(jnp.asarray(x), rotated_box(c, s, a + 180.0))
    np.testing.assert_allclose(turned[0, ::-1, ::-1], out[0], rtol=1e-4, atol=1e-4)


ps_align = jax.jit(lambda x, b: jr.ps_roi_align(x, b, OUT, sampling_ratio=0))
plain_align = jax.jit(lambda x, b: jr.roi_align(x, b, OUT, sampling_ratio=0, aligned=True, impl="xla"))
corner = st.tuples(st.floats(-1.0, 8.0), st.floats(-1.0, 6.0))
ps_maps = hnp.arrays(np.float32, (1, H, W, 2 * OUT[0] * OUT[1]), elements=st.floats(-4, 4, width=32))


@settings(max_examples=15, deadline=None)
@given(ps_maps, corner, size)
def test_ps_roi_align_is_roi_align_on_each_bins_channel(x, c, s):
    box = jnp.asarray([[c[0], c[1], c[0] + s[0], c[1] + s[1]]], jnp.float32)
    ps, full = np.asarray(ps_align(jnp.asarray(x), box)), np.asarray(plain_align(jnp.asarray(x), box))
    for channel in range(2):
        for p in range(OUT[0]):
            for q in range(OUT[1]):
                np.testing.assert_array_equal(ps[0, p, q, channel], full[0, p, q, (channel * OUT[0] + p) * OUT[1] + q])
