"""roi_pool and crop_and_resize against their NumPy transcriptions, with gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jax_roialign as jr
from jax_roialign.compat import tensorflow
from tests import cases, reference


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("scale,output_size", [(1.0, (3, 4)), (0.5, (2, 2)), (0.25, (1, 3))])
def test_roi_pool_matches_reference(scale, output_size):
    features = cases.random_features(0, (2, 10, 12, 3))
    # Edge boxes plus corners that land on .5 exactly after scaling (rounding ties).
    ties = np.array([[1.0, 3.0, 7.0, 9.0], [2.5 / scale, 0.5 / scale, 4.5 / scale, 6.5 / scale]])
    boxes = np.concatenate([cases.edge_boxes(10, 12, scale), ties])
    batch = np.arange(len(boxes), dtype=np.int32) % 2
    got = jr.roi_pool(jnp.asarray(features), jnp.asarray(boxes), output_size, batch_indices=batch, spatial_scale=scale)
    want = reference.roi_pool(features, boxes, batch, output_size, scale)
    np.testing.assert_array_equal(np.asarray(got), want)


@pytest.mark.usefixtures("x64")
def test_roi_pool_gradient_goes_to_the_argmax():
    features = jnp.asarray(cases.random_features(1, (1, 6, 7, 2)))
    boxes = jnp.asarray([[0.0, 0.0, 5.0, 4.0]])
    check_grads(lambda x: jr.roi_pool(x, boxes, 2), (features,), order=1, modes=["rev"], eps=1e-6)
    grad = jax.grad(lambda x: jr.roi_pool(x, boxes, 2).sum())(features)
    # Each of the 2 x 2 x 2 outputs sends a 1 to its argmax (overlapping bins may share one).
    grad = np.asarray(grad)
    assert grad.sum() == 8 and np.all(grad == np.round(grad))


@pytest.mark.parametrize("method", ["bilinear", "nearest"])
@pytest.mark.parametrize("crop_size", [(1, 1), (1, 4), (3, 5)])
@pytest.mark.parametrize("extrapolation_value", [0.0, -2.5])
def test_crop_and_resize_matches_reference(method, crop_size, extrapolation_value):
    image = cases.random_features(2, (2, 7, 9, 3), "float32")
    boxes = np.array(
        [
            [0.1, 0.2, 0.8, 0.7],
            [-0.3, 0.4, 0.6, 1.3],
            [1.2, 1.1, 1.5, 1.9],
            [0.9, 0.8, 0.1, 0.3],
            [0.25, 0.25, 0.75, 0.75],
        ],
        np.float32,
    )
    idx = np.array([0, 1, 0, 1, 1], np.int32)
    got = tensorflow.crop_and_resize(image, boxes, idx, crop_size, method, extrapolation_value)
    assert got.dtype == jnp.float32
    want = reference.crop_and_resize(image, boxes, idx, crop_size, method, extrapolation_value)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


@pytest.mark.usefixtures("x64")
def test_crop_and_resize_gradients():
    image = jnp.asarray(cases.random_features(3, (1, 6, 8, 2)), jnp.float32)
    boxes = jnp.asarray([[0.13, 0.21, 0.77, 0.69], [0.31, 0.08, 0.52, 0.93]], jnp.float32)

    def f(img, b):
        return tensorflow.crop_and_resize(img, b, jnp.zeros(2, jnp.int32), (3, 4))

    check_grads(f, (image, boxes), order=1, modes=["rev"], eps=1e-3, atol=2e-2, rtol=2e-2)
