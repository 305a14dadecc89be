"""The shared test base of roi_align_rotated: an implementation against the NumPy transcription and identities.

:class:`RotatedTestBase` checks ``jax_roialign.roi_align_rotated(..., impl=cls.impl)``
against ``tests/reference.roi_align_rotated`` (a sample-by-sample transcription of
``docs/conventions.md`` section 5) and against ``roi_align`` through identities that pin
the rotated arithmetic; each implementation subclasses it (``tests/xla/test_roi_align_rotated.py``).
Derivatives (features and all five box parameters, every mode and order) are checked
against finite differences in ``tests/test_transformations.py``.
Shapes are shared between tests so that their compilations are reused.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_roialign as jr
from tests import cases, reference

N, H, W, C = 2, 12, 14, 3


def problem(scale: float, seed: int = 0, dtype: str = "float64"):
    """(features (N, H, W, C), boxes (K, 5), batch (K,)): the rotated edge boxes plus 5 random ones."""
    features = cases.random_features(seed, (N, H, W, C), dtype)
    boxes = cases.rotated_boxes(seed, 5, H, W, scale)
    return features, boxes, np.arange(len(boxes), dtype=np.int32) % N


def corner_boxes(rotated: np.ndarray) -> np.ndarray:
    """(K, 4) [x1, y1, x2, y2] of unrotated (K, 5) [cx, cy, w, h, angle] boxes."""
    cx, cy, w, h = rotated[:, :4].T
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def quarter_turn_box(box: np.ndarray, k: int, scale: float, aligned: bool) -> np.ndarray:
    """(1, 4) [x1, y1, x2, y2]: the axis-aligned box on ``np.rot90(map, -k)`` (the map turned k quarter turns
    clockwise) that samples what ``box`` (cx, cy, w, h) turned by k * 90 degrees samples on the map (k = 1, 2, 3).

    A counter-clockwise turn of the box about its centre (displayed image, y down) equals
    a clockwise turn of the map under it.  With the map turned, pixel (i, j) moves to
    (j, H - 1 - i) for k = 1; on the map's coordinates (pixel centres at integers after
    the half-pixel offset o) the centre (x, y) moves to (H - 1 - y, x), i.e. in input
    coordinates to ((H - 1 + 2 o) / s - cy, cx); w and h stay.  k = 2, 3 compose.
    """
    o = 0.5 if aligned else 0.0
    cx, cy, w, h = box
    for step in range(k):
        height = H if step % 2 == 0 else W  # the height of the map being turned at this step
        cx, cy = (height - 1 + 2 * o) / scale - cy, cx
    return np.array([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]])


@pytest.mark.usefixtures("unoptimized_compiles")
class RotatedTestBase:
    """Agreement of roi_align_rotated(impl=self.impl) with the NumPy reference and with roi_align.

    Compilation dominates these tests, so every test reuses a few shapes and conventions,
    and compiles without XLA's optimization passes (the numbers hold either way).
    """

    impl: str

    def rotated(self, x, boxes, output_size, **kwargs):
        return jr.roi_align_rotated(x, boxes, output_size, impl=self.impl, **kwargs)

    @pytest.mark.usefixtures("x64")
    @pytest.mark.parametrize(
        "sampling_ratio,aligned,clockwise,scale,output_size",
        [(0, True, False, 1.0, (3, 5)), (2, False, True, 0.5, (2, 3))],
    )
    def test_matches_reference_float64(self, sampling_ratio, aligned, clockwise, scale, output_size):
        features, boxes, batch = problem(scale)
        kwargs = dict(spatial_scale=scale, sampling_ratio=sampling_ratio, aligned=aligned, clockwise=clockwise)
        got = self.rotated(jnp.asarray(features), jnp.asarray(boxes), output_size, batch_indices=batch, **kwargs)
        want = reference.roi_align_rotated(
            features, boxes, batch, output_size, scale, sampling_ratio, aligned, clockwise
        )
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)

    @pytest.mark.usefixtures("x64")
    def test_identities_with_roi_align(self):
        """Unrotated boxes are roi_align with the same aligned flag; clockwise is the negated angle; aligned=False
        is aligned=True with the centre moved by +0.5 / scale and w, h clamped to >= 1 / scale."""
        features, boxes, batch = problem(0.5, seed=2)
        x = jnp.asarray(features)
        kw = dict(spatial_scale=0.5, sampling_ratio=2, batch_indices=batch)
        out = {
            aligned: self.rotated(x, jnp.asarray(boxes), (2, 3), aligned=aligned, clockwise=True, **kw)
            for aligned in (True, False)
        }
        negated = boxes * np.array([1, 1, 1, 1, -1])
        chex.assert_trees_all_equal(out[True], self.rotated(x, jnp.asarray(negated), (2, 3), **kw))
        shifted = negated + np.array([1.0, 1.0, 0, 0, 0])
        shifted[:, 2:4] = np.maximum(shifted[:, 2:4], 2.0)
        np.testing.assert_allclose(out[False], self.rotated(x, jnp.asarray(shifted), (2, 3), **kw), atol=1e-12)
        # Angle 0 (boxes of >= 1 map pixel: aligned=False clamps about the centre here, from the corner in roi_align).
        big = (boxes[:, 2] >= 2.0) & (boxes[:, 3] >= 2.0)
        flat = np.where(big[:, None], boxes * np.array([1, 1, 1, 1, 0]), boxes)
        for aligned in (True, False):
            got = self.rotated(x, jnp.asarray(flat), (2, 3), aligned=aligned, clockwise=True, **kw)
            want = jr.roi_align(x, jnp.asarray(corner_boxes(flat)), (2, 3), aligned=aligned, **kw)
            np.testing.assert_allclose(np.asarray(got)[big], np.asarray(want)[big], rtol=1e-13, atol=1e-13)

    @pytest.mark.usefixtures("x64")
    def test_quarter_turns_are_roi_align_on_the_turned_map(self):
        """A box turned by 90, 180 or 270 degrees samples what the unturned box samples on the map turned
        the other way (np.rot90(map, -k)), forward and for the feature gradient."""
        features = cases.random_features(3, (1, H, W, C))
        # Samples off the integer grid and inside the map, so cos(pi / 2) = 6e-17 moves no sample over a border.
        box = np.array([6.3, 5.1, 5.4, 3.8])
        cot = np.random.default_rng(0).standard_normal((1, 2, 3, C))

        def value_and_grad(pool):
            return jax.jit(jax.value_and_grad(lambda x, b: jnp.vdot(pool(x, b, (2, 3), sampling_ratio=2), cot)))

        turned = value_and_grad(self.rotated)
        flat = value_and_grad(jr.roi_align)
        for k in (1, 2, 3):
            out, grad = turned(jnp.asarray(features), jnp.asarray(np.append(box, 90.0 * k)[None]))
            x_turned = jnp.asarray(np.rot90(features, -k, axes=(1, 2)).copy())
            out_flat, grad_flat = flat(x_turned, jnp.asarray(quarter_turn_box(box, k, 1.0, True)))
            np.testing.assert_allclose(out, out_flat, rtol=1e-12)
            np.testing.assert_allclose(np.asarray(grad), np.rot90(np.asarray(grad_flat), k, axes=(1, 2)), atol=1e-12)

    @pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
    def test_low_precision_dtypes(self, dtype):
        features, boxes, batch = problem(0.5, seed=1, dtype=dtype)
        got = self.rotated(
            jnp.asarray(features, dtype),
            jnp.asarray(boxes, jnp.float32),
            (2, 3),
            batch_indices=batch,
            spatial_scale=0.5,
            sampling_ratio=2,
        )
        assert got.dtype == jnp.dtype(dtype)
        want = reference.roi_align_rotated(features, boxes.astype(np.float32), batch, (2, 3), 0.5, 2)
        # float32 coordinates: an ulp of a coordinate moves a value by about that times the slope.
        tol = max(cases.tolerance(dtype, 16), 64 * cases.EPS["float32"] * max(H, W) * np.abs(features).max())
        np.testing.assert_allclose(np.asarray(got.astype(jnp.float32)), want, rtol=tol, atol=tol)

    def test_layouts_and_box_forms_agree(self):
        features, boxes, batch = problem(0.5, seed=5, dtype="float32")
        x, bx = jnp.asarray(features, jnp.float32), jnp.asarray(boxes, jnp.float32)
        kw = dict(sampling_ratio=2, spatial_scale=0.5)
        base = self.rotated(x, bx, (2, 3), batch_indices=batch, **kw)
        nchw = self.rotated(jnp.transpose(x, (0, 3, 1, 2)), bx, (2, 3), batch_indices=batch, data_format="NCHW", **kw)
        chex.assert_trees_all_equal(jnp.transpose(nchw, (0, 2, 3, 1)), base)
        rows6 = jnp.concatenate([jnp.asarray(batch, jnp.float32)[:, None], bx], axis=1)
        chex.assert_trees_all_equal(self.rotated(x, rows6, (2, 3), **kw), base)
        k = len(boxes) // N
        per_image = self.rotated(x, bx.reshape(N, k, 5), (2, 3), **kw)
        flat = self.rotated(x, bx, (2, 3), batch_indices=np.repeat(np.arange(N), k), **kw)
        chex.assert_shape(per_image, (N, k, 2, 3, C))
        chex.assert_trees_all_equal(per_image.reshape(flat.shape), flat)

    def test_bad_index_and_nonfinite_box_under_jit(self):
        """A batch index outside [0, N) gives zeros, a NaN/inf box NaN; neither touches other boxes or gradients."""
        x = jnp.asarray(cases.random_features(6, (N, H, W, C), "float32"), jnp.float32)
        boxes = jnp.asarray(cases.rotated_boxes(6, 4, H, W, 1.0)[-4:], jnp.float32)
        poisoned = boxes.at[1, 4].set(jnp.nan).at[2, 0].set(jnp.inf)
        bad, good = jnp.asarray([0, 1, 1, 2], jnp.int32), jnp.asarray([0, 1, 1, 0], jnp.int32)  # bad: box 3 outside

        @jax.jit
        def f(x, b, idx):
            return self.rotated(x, b, (2, 3), batch_indices=idx, sampling_ratio=0)

        out, clean = f(x, poisoned, bad), f(x, boxes, good)
        assert np.all(np.isnan(np.asarray(out[1:3]))) and np.all(np.asarray(out[3]) == 0)
        chex.assert_trees_all_equal(out[0], clean[0])
        keep = jnp.asarray([1.0, 0.0, 0.0, 0.0])[:, None, None, None]  # a loss that reads box 0 only
        grad = jax.jit(jax.grad(lambda x, b, idx: (f(x, b, idx) * keep).sum(), argnums=(0, 1)))
        (gx, gb), (gx_clean, _) = grad(x, poisoned, bad), grad(x, boxes, good)
        chex.assert_trees_all_equal(gx, gx_clean)
        assert np.all(np.isfinite(np.asarray(gb))) and not np.any(np.asarray(gb[1:]))

    def test_no_boxes(self):
        x = jnp.ones((N, 5, 6, 4), jnp.float32)

        def f(x, b):
            return self.rotated(x, b, (2, 3), batch_indices=jnp.zeros((0,), jnp.int32)).sum()

        gx, gb = jax.grad(f, argnums=(0, 1))(x, jnp.zeros((0, 5), jnp.float32))
        assert gx.shape == x.shape and gb.shape == (0, 5) and not np.any(np.asarray(gx))
