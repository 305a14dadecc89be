"""The shared test base of ps_roi_align and ps_roi_pool: an implementation against the NumPy transcriptions.

:class:`PSRoITestBase` checks ``jax_roialign.ps_roi_align(..., impl=cls.impl)`` and
``jax_roialign.ps_roi_pool`` against ``tests/reference.py`` (``docs/conventions.md``
section 6) under both grids, every dtype, layout, box form and edge case; each
implementation subclasses it (``tests/xla/test_ps_roi.py``, ``tests/kernels/test_ps_roi.py``;
ps_roi_pool has no Pallas path, so only the XLA subclass runs its pool-only tests).  Derivatives are checked against
finite differences in ``tests/test_transformations.py``.  Shapes are shared between
tests so that their compilations are reused, and compiled without XLA's optimizations.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_roialign as jr
from tests import cases, reference

N, H, W = 2, 7, 8
OUT = (2, 3)
C = 2 * OUT[0] * OUT[1]  # two output channels


def problem(scale: float, seed: int = 0, dtype: str = "float64", channels: int = C):
    """(features (N, H, W, channels), boxes (K, 4), batch (K,)): the edge boxes plus 5 random ones."""
    features = cases.random_features(seed, (N, H, W, channels), dtype)
    boxes = np.concatenate([cases.edge_boxes(H, W, scale), cases.random_boxes(seed, 5, H, W, scale)])
    return features, boxes, np.arange(len(boxes), dtype=np.int32) % N


@pytest.mark.usefixtures("unoptimized_compiles")
class PSRoITestBase:
    """Agreement of ps_roi_align(impl=self.impl) and ps_roi_pool with the NumPy reference."""

    impl: str

    def align(self, x, boxes, output_size, **kwargs):
        return jr.ps_roi_align(x, boxes, output_size, impl=self.impl, **kwargs)

    @pytest.mark.usefixtures("x64")
    @pytest.mark.parametrize("sampling_ratio,scale,output_size", [(0, 1.0, (3, 3)), (2, 0.5, OUT)])
    def test_ps_roi_align_matches_reference_float64(self, sampling_ratio, scale, output_size):
        channels = 2 * output_size[0] * output_size[1]
        features, boxes, batch = problem(scale, channels=channels)
        kwargs = dict(spatial_scale=scale, sampling_ratio=sampling_ratio, batch_indices=batch)
        got = self.align(jnp.asarray(features), jnp.asarray(boxes), output_size, **kwargs)
        want = reference.ps_roi_align(features, boxes, batch, output_size, scale, sampling_ratio)
        assert got.shape == want.shape == (len(boxes), *output_size, 2) and got.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)

    @pytest.mark.usefixtures("x64")
    def test_bins_of_any_size_match_the_reference(self):
        """Adaptive grids and pooled cells of bins from one row to many rows and columns (many terms of the
        tap sum) are exact, for both ops, in one compiled program per op."""
        features = cases.random_features(8, (1, 30, 34, OUT[0] * OUT[1]))
        rng = np.random.default_rng(8)
        align = jax.jit(lambda x, b: self.align(x, b, OUT, sampling_ratio=0))
        pool = jax.jit(lambda x, b: jr.ps_roi_pool(x, b, OUT))
        for max_size in (3.0, 20.0, 90.0):
            corner = rng.uniform(-2, 25, (3, 2))
            boxes = np.concatenate([corner, corner + rng.uniform(0.5, max_size, (3, 2))], 1)
            want = reference.ps_roi_align(features, boxes, np.zeros(3, int), OUT, 1.0, 0)
            np.testing.assert_allclose(np.asarray(align(features, boxes)), want, rtol=1e-12, atol=1e-12)
            want = reference.ps_roi_pool(features, boxes, np.zeros(3, int), OUT, 1.0)
            np.testing.assert_allclose(np.asarray(pool(features, boxes)), want, rtol=1e-13, atol=1e-13)

    @pytest.mark.usefixtures("x64")
    @pytest.mark.parametrize("scale", [1.0, 0.5])
    def test_ps_roi_pool_matches_reference_float64(self, scale):
        features, boxes, batch = problem(scale, seed=1)
        # Corners exactly on .5 after scaling (round half away from zero), and the last row and column.
        ties = np.array([[1.5, -0.5, 4.5, 2.5], [W - 2.0, H - 2.0, W, H], [0.0, 0.0, W, H]]) / scale
        boxes, batch = np.concatenate([boxes, ties]), np.concatenate([batch, [0, 1, 0]])
        got = jr.ps_roi_pool(jnp.asarray(features), jnp.asarray(boxes), OUT, batch_indices=batch, spatial_scale=scale)
        want = reference.ps_roi_pool(features, boxes, batch, OUT, scale)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-13, atol=1e-13)

    @pytest.mark.usefixtures("x64")
    def test_ps_roi_pool_gradient_is_the_derivative_of_its_forward(self):
        """1 / area on every cell of each bin, the last row and column included in none (they are never read)."""
        features = jnp.asarray(cases.random_features(5, (1, 6, 7, C)))
        boxes = jnp.asarray([[0.0, 0.0, 7.0, 6.0], [1.4, 0.6, 4.6, 5.2]])
        cot = jnp.asarray(np.random.default_rng(2).standard_normal((2, *OUT, 2)))

        @jax.jit
        def loss(x, b):
            return jnp.vdot(jr.ps_roi_pool(x, b, OUT), cot)

        grad_x, grad_b = jax.grad(loss, argnums=(0, 1))(features, boxes)
        assert not np.any(np.asarray(grad_b))
        assert not np.any(np.asarray(grad_x)[0, -1]) and not np.any(np.asarray(grad_x)[0, :, -1])
        cases.assert_gradients_match_differences(lambda x: loss(x, boxes), (features,))

    @pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
    def test_low_precision_dtypes(self, dtype):
        features, boxes, batch = problem(0.5, seed=1, dtype=dtype)
        x, b = jnp.asarray(features, dtype), jnp.asarray(boxes, jnp.float32)
        kwargs = dict(batch_indices=batch, spatial_scale=0.5)
        got = self.align(x, b, OUT, sampling_ratio=2, **kwargs)
        pooled = jr.ps_roi_pool(x, b, OUT, **kwargs)
        assert got.dtype == pooled.dtype == jnp.dtype(dtype)
        tol = max(cases.tolerance(dtype, 16), 16 * cases.EPS["float32"] * max(H, W) * np.abs(features).max())
        want = reference.ps_roi_align(features, boxes.astype(np.float32), batch, OUT, 0.5, 2)
        np.testing.assert_allclose(np.asarray(got.astype(jnp.float32)), want, rtol=tol, atol=tol)
        want = reference.ps_roi_pool(features, boxes.astype(np.float32), batch, OUT, 0.5)
        np.testing.assert_allclose(np.asarray(pooled.astype(jnp.float32)), want, rtol=tol, atol=tol)

    def test_layouts_and_box_forms_agree(self):
        features, boxes, batch = problem(0.5, seed=5, dtype="float32")
        x, bx = jnp.asarray(features, jnp.float32), jnp.asarray(boxes, jnp.float32)
        nchw = jnp.transpose(x, (0, 3, 1, 2))
        rows5 = jnp.concatenate([jnp.asarray(batch, jnp.float32)[:, None], bx], axis=1)
        k = len(boxes) // N
        for op in (functools.partial(self.align, sampling_ratio=0), jr.ps_roi_pool):
            base = op(x, bx, OUT, batch_indices=batch, spatial_scale=0.5)
            chex.assert_shape(base, (len(boxes), *OUT, 2))
            from_nchw = op(nchw, bx, OUT, batch_indices=batch, spatial_scale=0.5, data_format="NCHW")
            chex.assert_trees_all_equal(jnp.transpose(from_nchw, (0, 2, 3, 1)), base)
            chex.assert_trees_all_equal(op(x, rows5, OUT, spatial_scale=0.5), base)
            per_image = op(x, bx.reshape(N, k, 4), OUT, spatial_scale=0.5)
            flat = op(x, bx, OUT, batch_indices=np.repeat(np.arange(N), k), spatial_scale=0.5)
            chex.assert_trees_all_equal(per_image.reshape(flat.shape), flat)

    def test_bad_index_and_nonfinite_box_under_jit(self):
        """A batch index outside [0, N) gives zeros, a NaN/inf box NaN; neither touches other boxes or gradients.

        Both ops share their tap sum (and its guards), so ps_roi_pool's gradient is not traced again here.
        """
        x = jnp.asarray(cases.random_features(6, (N, H, W, C), "float32"), jnp.float32)
        boxes = jnp.asarray(cases.random_boxes(6, 4, H, W, 1.0), jnp.float32)
        poisoned = boxes.at[1, 3].set(jnp.nan).at[2, 0].set(-jnp.inf)
        bad, good = jnp.asarray([0, 1, 1, -1], jnp.int32), jnp.asarray([0, 1, 1, 0], jnp.int32)  # bad: box 3
        for op in (functools.partial(self.align, sampling_ratio=0), jr.ps_roi_pool):
            out = jax.jit(lambda x, b, idx, op=op: op(x, b, OUT, batch_indices=idx))(x, poisoned, bad)
            assert np.all(np.isnan(np.asarray(out[1:3]))) and np.all(np.asarray(out[3]) == 0)
            chex.assert_trees_all_equal(out[0], op(x, boxes, OUT, batch_indices=good)[0])
        keep = jnp.asarray([1.0, 0.0, 0.0, 0.0])[:, None, None, None]  # a loss that reads box 0 only

        @jax.jit
        def grad(x, b, idx):
            return jax.grad(lambda x, b: (self.align(x, b, OUT, batch_indices=idx) * keep).sum(), argnums=(0, 1))(x, b)

        (gx, gb), (gx_clean, _) = grad(x, poisoned, bad), grad(x, boxes, good)
        chex.assert_trees_all_equal(gx, gx_clean)
        assert np.all(np.isfinite(np.asarray(gb))) and not np.any(np.asarray(gb[1:]))

    def test_forward_mode_and_vmap(self):
        """jvp in the boxes matches central differences; vmap over box sets matches separate calls
        (every other transformation is the tap sum's, checked on roi_align in tests/test_transformations.py)."""
        x = jnp.asarray(cases.random_features(9, (1, H, W, C), "float32"), jnp.float32)
        boxes = jnp.asarray([[0.67, 0.73, 4.41, 5.05], [1.37, 0.43, 6.01, 3.65]], jnp.float32)
        f = jax.jit(lambda b: self.align(x, b, OUT))
        direction = jnp.asarray(np.random.default_rng(3).standard_normal(boxes.shape), jnp.float32)
        _, tangent = jax.jvp(f, (boxes,), (direction,))
        eps = 1e-2
        numeric = (f(boxes + eps * direction) - f(boxes - eps * direction)) / (2 * eps)
        np.testing.assert_allclose(tangent, numeric, rtol=1e-3, atol=1e-3)
        sets = jnp.stack([boxes, boxes + 0.5])
        chex.assert_trees_all_close(jax.vmap(f)(sets), jnp.stack([f(sets[0]), f(sets[1])]), rtol=1e-6, atol=1e-6)

    def test_no_boxes_and_channel_count(self):
        x = jnp.ones((N, 5, 6, C), jnp.float32)
        none, idx = jnp.zeros((0, 4), jnp.float32), jnp.zeros((0,), jnp.int32)
        for op in (self.align, jr.ps_roi_pool):
            gx, gb = jax.grad(lambda x, b, op=op: op(x, b, OUT, batch_indices=idx).sum(), argnums=(0, 1))(x, none)
            assert gx.shape == x.shape and gb.shape == (0, 4) and not np.any(np.asarray(gx))
            with pytest.raises(ValueError, match=r"features must have a multiple of out_h \* out_w = 9 channels"):
                op(x, none, 3, batch_indices=idx)
