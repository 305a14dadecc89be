"""The shared test base of roi_align: every implementation against the NumPy transcription.

:class:`RoIAlignTestBase` checks ``jax_roialign.roi_align(..., impl=cls.impl)`` against
``tests/reference.py`` (a sample-by-sample transcription of ``docs/conventions.md``) under
every convention, dtype, box form and edge case; each implementation's test module
subclasses it with its impl (``tests/xla/test_roi_align.py``, ``tests/kernels/test_roi_align.py``).
The class name does not start with "Test", so pytest collects only the subclasses.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jax_roialign as jr
from tests import cases, reference

N, H, W, C = 2, 12, 14, 3


def problem(scale: float, seed: int = 0, dtype: str = "float64"):
    features = cases.random_features(seed, (N, H, W, C), dtype)
    boxes = np.concatenate([cases.edge_boxes(H, W, scale), cases.random_boxes(seed, 6, H, W, scale)])
    batch = np.arange(len(boxes), dtype=np.int32) % N
    return features, boxes, batch


def _n_reduced(boxes: np.ndarray, output_size, scale: float, sampling_ratio: int) -> int:
    """Largest number of taps any output element sums over (4 per sample)."""
    if sampling_ratio > 0:
        return 4 * sampling_ratio**2
    size = np.abs(boxes[:, 2:] - boxes[:, :2]).max(axis=0) * scale + 1
    return int(4 * np.prod(np.ceil(size / np.asarray(output_size[::-1]))))


# Every (mode, sampling ratio, aligned) convention once, the three (scale, output size)
# problems in rotation, so that each problem meets every mode, ratio and alignment.
_PROBLEMS = [(1.0, (3, 5)), (0.5, (2, 2)), (0.25, (1, 1))]
REFERENCE_GRID = [
    (mode, ratio, aligned, *_PROBLEMS[(m + r + a) % 3])
    for m, mode in enumerate(["avg", "max", "corner_max"])
    for r, ratio in enumerate([0, 1, 2, 3])
    for a, aligned in enumerate([True, False])
]


class RoIAlignTestBase:
    """Agreement of roi_align(impl=self.impl) with the NumPy reference."""

    impl: str

    @staticmethod
    def pools(mode: str, sampling_ratio: int) -> bool:
        """Whether the implementation takes this mode and grid (one that declines some tests that itself)."""
        return True

    @pytest.fixture(autouse=True)
    def _pooled_calls_only(self, request):
        callspec = getattr(request.node, "callspec", None)
        params = callspec.params if callspec is not None else {}
        # Tests without a sampling_ratio parameter call roi_align's default, adaptive (0).
        mode, ratio = params.get("mode", "avg"), params.get("sampling_ratio", 0)
        if not self.pools(mode, ratio):
            pytest.skip(f"impl={self.impl!r} declines mode={mode!r} with sampling_ratio={ratio}")

    @pytest.mark.usefixtures("x64")
    @pytest.mark.parametrize("mode,sampling_ratio,aligned,scale,output_size", REFERENCE_GRID)
    def test_matches_reference_float64(self, mode, sampling_ratio, aligned, scale, output_size):
        features, boxes, batch = problem(scale)
        kwargs = dict(spatial_scale=scale, sampling_ratio=sampling_ratio, aligned=aligned, mode=mode)
        got = jr.roi_align(
            jnp.asarray(features), jnp.asarray(boxes), output_size, batch_indices=batch, impl=self.impl, **kwargs
        )
        want = reference.roi_align(features, boxes, batch, output_size, scale, sampling_ratio, aligned, mode)
        assert got.dtype == jnp.float64
        tol = cases.tolerance("float64", _n_reduced(boxes, output_size, scale, sampling_ratio))
        np.testing.assert_allclose(np.asarray(got), want, rtol=tol, atol=tol)

    @pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
    @pytest.mark.parametrize("mode", ["avg", "max"])
    @pytest.mark.parametrize("sampling_ratio", [0, 2])
    def test_low_precision_dtypes(self, dtype, mode, sampling_ratio):
        features, boxes, batch = problem(0.5, seed=1, dtype=dtype)
        got = jr.roi_align(
            jnp.asarray(features, dtype),
            jnp.asarray(boxes, jnp.float32),
            (3, 4),
            batch_indices=batch,
            spatial_scale=0.5,
            sampling_ratio=sampling_ratio,
            mode=mode,
            impl=self.impl,
        )
        assert got.dtype == jnp.dtype(dtype)
        want = reference.roi_align(features, boxes.astype(np.float32), batch, (3, 4), 0.5, sampling_ratio, True, mode)
        tol = cases.tolerance(dtype, _n_reduced(boxes, (3, 4), 0.5, sampling_ratio))
        # Sample coordinates are float32: errors of ulp(coordinate) move values by that much times the slope.
        tol = max(tol, 16 * cases.EPS["float32"] * max(H, W) * np.abs(features).max())
        np.testing.assert_allclose(np.asarray(got.astype(jnp.float32)), want, rtol=tol, atol=tol)

    @pytest.mark.usefixtures("x64")
    @pytest.mark.parametrize("mode", ["avg", "max"])
    def test_adaptive_grid_exact_under_jit(self, mode):
        """Huge boxes need grids of hundreds of samples per bin: no cap, same numbers under jit."""
        features = cases.random_features(3, (1, 9, 11, 2))
        # Grids of 200 x 11, 3 x 1 and 1 x 134 samples per bin.
        boxes = np.array([[-20.3, -150.1, 40.7, 249.2], [2.1, 1.7, 9.9, 8.4], [-3.0, 4.0, 400.0, 5.5]])
        batch = np.zeros(3, np.int32)
        fn = jax.jit(
            lambda f, b: jr.roi_align(f, b, (2, 3), batch_indices=batch, sampling_ratio=0, mode=mode, impl=self.impl)
        )
        got = fn(jnp.asarray(features), jnp.asarray(boxes))
        want = reference.roi_align(features, boxes, batch, (2, 3), 1.0, 0, True, mode)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-9)

    @pytest.mark.usefixtures("x64")
    @pytest.mark.parametrize("max_size", [6.0, 24.0, 60.0])
    def test_every_window_tier_matches_the_reference(self, max_size):
        """Adaptive avg picks its window from the largest bin of the call; each tier is exact."""
        features = cases.random_features(8, (1, 48, 52, 2))
        rng = np.random.default_rng(8)
        corner = rng.uniform(-2, 30, (5, 2))
        boxes = np.concatenate([corner, corner + rng.uniform(0.5, max_size, (5, 2))], 1)
        batch = np.zeros(5, np.int32)
        got = jr.roi_align(
            jnp.asarray(features), jnp.asarray(boxes), (2, 3), batch_indices=batch, sampling_ratio=0, impl=self.impl
        )
        want = reference.roi_align(features, boxes, batch, (2, 3), 1.0, 0, True, "avg")
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)

    @pytest.mark.usefixtures("x64")
    @pytest.mark.parametrize("mode", ["avg", "max", "corner_max"])
    @pytest.mark.parametrize("sampling_ratio", [0, 2])
    @pytest.mark.parametrize("aligned", [True, False])
    def test_gradients_finite_differences(self, mode, sampling_ratio, aligned):
        """Gradients w.r.t. features and boxes match finite differences away from kinks."""
        features = jnp.asarray(cases.random_features(4, (2, 8, 9, 2)))
        # Boxes with non-integer sample positions: no sample sits within eps of a kink.
        boxes = jnp.asarray([[1.13, 0.71, 6.37, 5.29], [0.43, 2.17, 7.61, 6.83], [2.31, 1.27, 5.03, 3.41]])
        batch = jnp.asarray([0, 1, 1], jnp.int32)

        def f(x, b):
            return jr.roi_align(
                x,
                b,
                (2, 3),
                batch_indices=batch,
                sampling_ratio=sampling_ratio,
                aligned=aligned,
                mode=mode,
                impl=self.impl,
            )

        check_grads(jax.jit(f), (features, boxes), order=1, modes=["rev"], eps=1e-6, atol=1e-5, rtol=1e-5)

    def test_layouts_and_box_forms_agree(self):
        features, boxes, batch = problem(1.0, seed=5, dtype="float32")
        x = jnp.asarray(features, jnp.float32)
        bx = jnp.asarray(boxes, jnp.float32)
        kw = dict(sampling_ratio=2, impl=self.impl)
        base = jr.roi_align(x, bx, (3, 3), batch_indices=batch, **kw)
        nchw = jr.roi_align(jnp.transpose(x, (0, 3, 1, 2)), bx, (3, 3), batch_indices=batch, data_format="NCHW", **kw)
        chex.assert_trees_all_equal(jnp.transpose(nchw, (0, 2, 3, 1)), base)
        rows5 = jnp.concatenate([jnp.asarray(batch, jnp.float32)[:, None], bx], axis=1)
        chex.assert_trees_all_equal(jr.roi_align(x, rows5, (3, 3), **kw), base)
        padded = bx[:12].reshape(N, 6, 4)  # image i gets boxes 6i .. 6i+5
        per_image = jr.roi_align(x, padded, (3, 3), **kw)
        flat = jr.roi_align(x, bx[:12], (3, 3), batch_indices=np.repeat(np.arange(N), 6), **kw)
        chex.assert_shape(per_image, (N, 6, 3, 3, C))
        chex.assert_trees_all_equal(per_image.reshape(flat.shape), flat)

    @pytest.mark.parametrize("mode", ["avg", "max"])
    def test_out_of_range_batch_index_under_jit_gives_zeros(self, mode):
        x = jnp.asarray(cases.random_features(6, (N, H, W, C), "float32"), jnp.float32)
        boxes = jnp.asarray([[1.0, 1.0, 8.0, 9.0]] * 3, jnp.float32)
        fn = jax.jit(lambda b: jr.roi_align(x, boxes, 2, batch_indices=b, mode=mode, impl=self.impl))
        out = fn(jnp.asarray([0, 2, -1], jnp.int32))
        assert np.all(np.asarray(out[1:]) == 0)
        chex.assert_trees_all_equal(out[0], fn(jnp.asarray([0, 0, 0], jnp.int32))[0])

    @pytest.mark.parametrize("mode", ["avg", "max"])
    def test_nonfinite_box_is_isolated(self, mode):
        """NaN / inf boxes yield NaN for themselves only; other outputs and all gradients are untouched."""
        x = jnp.asarray(cases.random_features(7, (N, H, W, C), "float32"), jnp.float32)
        boxes = np.asarray(cases.random_boxes(7, 5, H, W, 1.0), np.float32)
        batch = jnp.asarray([0, 1, 1, 0, 1], jnp.int32)
        poisoned = boxes.copy()
        poisoned[1, 2] = np.nan
        poisoned[3, 0], poisoned[3, 3] = -np.inf, np.inf

        def f(x, b, idx):
            return jr.roi_align(x, b, (2, 3), batch_indices=idx, mode=mode, impl=self.impl)

        out = jax.jit(f)(x, jnp.asarray(poisoned), batch)
        assert np.all(np.isnan(np.asarray(out[1]))) and np.all(np.isnan(np.asarray(out[3])))
        keep = np.array([0, 2, 4])
        clean = jax.jit(f)(x, jnp.asarray(boxes[keep]), batch[keep])
        chex.assert_trees_all_close(out[keep], clean, rtol=1e-6, atol=1e-6)
        cot = jnp.ones_like(out).at[np.array([1, 3])].set(0.0)  # a loss that ignores the poisoned rows
        grads = jax.jit(jax.grad(lambda x, b: (f(x, b, batch) * cot).sum(), argnums=(0, 1)))
        gx, gb = grads(x, jnp.asarray(poisoned))
        gx_clean = jax.jit(jax.grad(lambda x: f(x, jnp.asarray(boxes[keep]), batch[keep]).sum()))(x)
        chex.assert_trees_all_close(gx, gx_clean, rtol=1e-5, atol=1e-5)
        assert np.all(np.isfinite(np.asarray(gb)))

    @pytest.mark.parametrize("mode", ["avg", "max"])
    @pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
    def test_no_boxes(self, mode, data_format):
        x = jnp.ones((N, 5, 6, 4) if data_format == "NHWC" else (N, 4, 5, 6), jnp.float32)
        boxes = jnp.zeros((0, 4), jnp.float32)

        def f(x, b):
            return jr.roi_align(
                x,
                b,
                (2, 3),
                batch_indices=jnp.zeros((0,), jnp.int32),
                mode=mode,
                data_format=data_format,
                impl=self.impl,
            ).sum()

        assert (
            jr.roi_align(
                x,
                boxes,
                (2, 3),
                batch_indices=jnp.zeros((0,), jnp.int32),
                mode=mode,
                data_format=data_format,
                impl=self.impl,
            ).shape[0]
            == 0
        )
        gx, gb = jax.grad(f, argnums=(0, 1))(x, boxes)
        assert gx.shape == x.shape and gb.shape == (0, 4) and not np.any(np.asarray(gx))
