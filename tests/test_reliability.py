"""Reliability: run-time checks, determinism, empty inputs, sharding, and properties of the op."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.experimental import checkify

import jax_roialign as jr
from jax_roialign import checked
from jax_roialign.compat import tensorflow
from tests import cases

ROOT = pathlib.Path(__file__).resolve().parents[1]
X = jnp.asarray(cases.random_features(0, (2, 12, 14, 4), "float32"), jnp.float32)
BOXES = jnp.asarray(cases.random_boxes(0, 6, 12, 14, 1.0), jnp.float32)
IDX = jnp.asarray([0, 1, 0, 1, 1, 0], jnp.int32)


@pytest.mark.parametrize("op,plain", [(checked.roi_align, jr.roi_align), (checked.roi_pool, jr.roi_pool)])
def test_checked_ops_raise_at_run_time(op, plain):
    np.testing.assert_array_equal(op(X, BOXES, 3, batch_indices=IDX), plain(X, BOXES, 3, batch_indices=IDX))
    with pytest.raises(checkify.JaxRuntimeError, match=r"batch index 5 \(box 2\) is outside \[0, 2\)"):
        op(X, BOXES, 3, batch_indices=IDX.at[2].set(5))
    with pytest.raises(checkify.JaxRuntimeError, match="box 4 has a non-finite coordinate"):
        op(X, BOXES.at[4, 1].set(jnp.inf), 3, batch_indices=IDX)


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_forward_and_backward_are_bitwise_deterministic(mode, sampling_ratio):
    def loss(x, b):
        out = jr.roi_align(x, b, 5, batch_indices=IDX, sampling_ratio=sampling_ratio, mode=mode)
        return (out * jnp.arange(out.size, dtype=out.dtype).reshape(out.shape)).sum()

    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    first = jax.tree.map(np.asarray, grad(X, BOXES))
    for _ in range(2):
        jax.tree.map(np.testing.assert_array_equal, first, jax.tree.map(np.asarray, grad(X, BOXES)))


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_no_boxes_for_roi_pool_and_crop_and_resize(data_format):
    x = X if data_format == "NHWC" else jnp.transpose(X, (0, 3, 1, 2))
    none = jnp.zeros((0, 4), jnp.float32)
    idx = jnp.zeros((0,), jnp.int32)
    grad = jax.grad(lambda x: jr.roi_pool(x, none, 2, batch_indices=idx, data_format=data_format).sum())(x)
    assert grad.shape == x.shape and not np.any(np.asarray(grad))
    gi, gb = jax.grad(lambda i, b: tensorflow.crop_and_resize(i, b, idx, (2, 2)).sum(), argnums=(0, 1))(X, none)
    assert gi.shape == X.shape and gb.shape == (0, 4)


def test_sharding_example_matches_single_device():
    """examples/sharding.py: 8 host devices, NamedSharding, shard_map, vmap and pmap."""
    run = subprocess.run(
        [sys.executable, "examples/sharding.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "shard_map" in run.stdout and "devices=8" in run.stdout


# Properties, on fixed shapes so that jit compiles once per test.
H, W, C = 10, 12, 2
corner = st.tuples(st.floats(0.5, 5.5), st.floats(0.5, 5.5))
size = st.tuples(st.floats(1.0, 4.0), st.floats(1.0, 4.0))
# No subnormals: XLA's CPU backend flushes them to zero (a property of the backend, not of RoIAlign).
feature_maps = hnp.arrays(np.float32, (1, H, W, C), elements=st.floats(-4, 4, width=32, allow_subnormal=False))
align = jax.jit(lambda x, b: jr.roi_align(x, b, (3, 2), sampling_ratio=0))


def box_of(c, s) -> jnp.ndarray:
    return jnp.asarray([[c[0], c[1], c[0] + s[0], c[1] + s[1]]], jnp.float32)


@settings(max_examples=25, deadline=None)
@given(feature_maps, feature_maps, corner, size, st.floats(-2, 2))
def test_linear_in_the_features(a, b, c, s, alpha):
    box = box_of(c, s)
    lhs = align(jnp.asarray(a) + alpha * jnp.asarray(b), box)
    rhs = align(jnp.asarray(a), box) + alpha * align(jnp.asarray(b), box)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5, atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(st.floats(-3, 3, width=32, allow_subnormal=False), corner, size)
def test_constant_map_gives_the_constant_inside(value, c, s):
    out = align(jnp.full((1, H, W, C), value, jnp.float32), box_of(c, s))
    np.testing.assert_allclose(out, value, rtol=1e-5, atol=1e-5)


def _dyadic(lo: float, hi: float) -> st.SearchStrategy:
    """Multiples of 1/256 in [lo, hi]: exact in float32 after any integer shift, as are the
    box sides computed from them."""
    return st.integers(int(lo * 256), int(hi * 256)).map(lambda i: i / 256)


@settings(max_examples=25, deadline=None)
@given(
    feature_maps,
    st.tuples(_dyadic(0.5, 5.5), _dyadic(0.5, 5.5)),
    st.tuples(_dyadic(1.0, 4.0), _dyadic(1.0, 4.0)),
    st.integers(1, 3),
    st.integers(1, 3),
)
def test_integer_translation_commutes(x, c, s, dy, dx):
    shifted = jnp.pad(jnp.asarray(x), ((0, 0), (dy, 0), (dx, 0), (0, 0)))[:, :H, :W]
    moved = box_of((c[0] + dx, c[1] + dy), s)
    # Only boxes whose samples stay inside both maps translate exactly.  The coordinates are
    # dyadic so that both boxes have the same float32 size: otherwise a side that rounds
    # across an integer multiple of the output size changes the adaptive grid
    # (ceil(side / output)), and the shifted box samples differently (found by hypothesis:
    # c = (1.2793402770892222, 1.0), s = (4.0, 1.0), dx = 3 read 0.87689 against 0.87989).
    if c[0] + dx + s[0] < W - 1 and c[1] + dy + s[1] < H - 1:
        np.testing.assert_allclose(align(shifted, moved), align(jnp.asarray(x), box_of(c, s)), rtol=1e-5, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(feature_maps, st.integers(0, W - 3), st.integers(0, H - 4))
def test_pixel_aligned_box_returns_the_pixels(x, x0, y0):
    """An aligned box spanning exactly 2 x 3 pixels with one sample per bin reads their centres."""
    box = jnp.asarray([[x0, y0, x0 + 2, y0 + 3]], jnp.float32)
    out = jr.roi_align(jnp.asarray(x), box, (3, 2), sampling_ratio=1, aligned=True)
    np.testing.assert_array_equal(out[0], x[0, y0 : y0 + 3, x0 : x0 + 2])


@settings(max_examples=25, deadline=None)
@given(feature_maps, corner, size)
def test_avg_lies_within_the_window(x, c, s):
    out = np.asarray(align(jnp.asarray(x), box_of(c, s)))
    # Aligned: the box starts half a pixel earlier; bilinear reads reach one pixel further.
    x0, y0 = max(int(np.floor(c[0] - 0.5)), 0), max(int(np.floor(c[1] - 0.5)), 0)
    x1, y1 = int(np.ceil(c[0] + s[0] - 0.5)) + 1, int(np.ceil(c[1] + s[1] - 0.5)) + 1
    window = x[0, y0:y1, x0:x1]
    assert np.all(out >= window.min(axis=(0, 1)) - 1e-5) and np.all(out <= window.max(axis=(0, 1)) + 1e-5)


@settings(max_examples=15, deadline=None)
@given(corner, size)
def test_box_gradient_matches_finite_differences(c, s):
    x = jnp.asarray(cases.random_features(1, (1, H, W, C)), jnp.float32)
    box = box_of(c, s)
    direction = jnp.asarray([[0.3, -0.2, 0.25, 0.4]], jnp.float32)

    def f(b):
        return jnp.sum(align(x, b) * jnp.arange(12, dtype=jnp.float32).reshape(1, 3, 2, 2))

    eps = 1e-2
    numeric = (f(box + eps * direction) - f(box - eps * direction)) / (2 * eps)
    analytic = jnp.sum(jax.grad(f)(box) * direction)
    # A kink (a sample crossing a pixel centre or the grid changing size) within eps
    # breaks the central difference; those draws are skipped rather than loosened.
    left = (f(box) - f(box - eps * direction)) / eps
    right = (f(box + eps * direction) - f(box)) / eps
    tol = 2e-2 * (1 + abs(float(numeric)))
    if abs(float(left - right)) < tol:
        np.testing.assert_allclose(analytic, numeric, rtol=0, atol=tol)
