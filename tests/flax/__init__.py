"""Tests of jax_roialign.flax; the inputs and the bad-argument table below are shared with tests/test_haiku.py.

Every module test pools the same small problem with a fixed sampling grid, so the
compiled functional op is reused across the linen, nnx and Haiku tests (compilation
dominates their runtime on a CPU).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import jax_roialign as jr

OUTPUT_SIZE = 4
# A 64 x 64 image: level 0 is its 1/4 map, level 1 its 1/8 map.
IMAGE_SIZE = (64, 64)
FEATURES = jnp.asarray(np.random.default_rng(0).standard_normal((2, 16, 16, 3)), jnp.float32)
LEVELS = (FEATURES, jnp.asarray(np.random.default_rng(1).standard_normal((2, 8, 8, 3)), jnp.float32))
# Per-image padded (N, R, 4) boxes in image pixels; with canonical_size 32 and canonical_level 3
# those with sqrt(area) >= 32 go to level 1, the others to level 0 (with the defaults 224 and 4
# all of them would go to level 0).
BOXES = jnp.asarray(
    [
        [[4.0, 6.0, 20.0, 18.0], [10.0, 8.0, 58.0, 50.0], [30.0, 2.0, 40.0, 60.0]],
        [[0.0, 0.0, 63.0, 63.0], [12.5, 30.25, 27.75, 41.5], [-5.0, 20.0, 40.0, 70.0]],
    ],
    jnp.float32,
)
BATCH_INDICES = jnp.repeat(jnp.arange(2, dtype=jnp.int32), 3)  # the image of each row of BOXES.reshape(-1, 4)
VALID = jnp.asarray([[True, True, False], [True, False, True]])  # a validity mask of BOXES' rows

ROI_ALIGN_KWARGS = {"spatial_scale": 0.25, "sampling_ratio": 2}
MULTISCALE_KWARGS = {"spatial_scales": (0.25, 0.125), "sampling_ratio": 2, "canonical_size": 32.0, "canonical_level": 3}

# Non-default values of every constructor argument, to check that each one reaches the function.
ROI_ALIGN_CONFIG = {
    "output_size": (2, 3),
    "spatial_scale": 0.5,
    "sampling_ratio": 3,
    "aligned": False,
    "mode": "max",
    "impl": "xla",
}
MULTISCALE_CONFIG = {
    "output_size": (2, 3),
    "spatial_scales": (0.5, 0.25, 0.125),
    "image_size": (40, 60),
    "sampling_ratio": 3,
    "aligned": False,
    "mode": "corner_max",
    "canonical_size": 100.0,
    "canonical_level": 3,
    "mapper": "detectron2",
    "impl": "xla",
}

# (multiscale?, constructor keywords, exception, message pattern) for constructor validation.
BAD_ARGUMENTS = [
    (False, {"output_size": 0}, ValueError, "output_size"),
    (False, {"output_size": (2,)}, TypeError, "output_size"),
    (False, {"output_size": 4, "spatial_scale": -0.25}, ValueError, "spatial_scale"),
    (False, {"output_size": 4, "spatial_scale": float("nan")}, ValueError, "spatial_scale"),
    (False, {"output_size": 4, "sampling_ratio": 1.5}, TypeError, "sampling_ratio"),
    (False, {"output_size": 4, "aligned": "yes"}, TypeError, "aligned"),
    (False, {"output_size": 4, "mode": "mean"}, ValueError, "mode"),
    (False, {"output_size": 4, "impl": "cuda"}, ValueError, "impl"),
    (True, {"output_size": 4}, ValueError, "image_size is required"),
    (True, {"output_size": 4, "spatial_scales": 0.25}, TypeError, "spatial_scales"),
    (True, {"output_size": 4, "spatial_scales": ()}, TypeError, "spatial_scales"),
    (True, {"output_size": 4, "spatial_scales": (0.25, 0.0)}, ValueError, "spatial_scales"),
    (True, {"output_size": 4, "spatial_scales": (0.125, 0.25)}, ValueError, "strictly decreasing"),
    (True, {"output_size": 4, "image_size": 64}, TypeError, "image_size"),
    (True, {"output_size": 4, "image_size": (64, 0)}, ValueError, "image_size"),
    (True, {"output_size": 0, "image_size": IMAGE_SIZE}, ValueError, "output_size"),
    (True, {"output_size": 4, "image_size": IMAGE_SIZE, "mode": "mean"}, ValueError, "mode"),
    (True, {"output_size": 4, "image_size": IMAGE_SIZE, "sampling_ratio": "2"}, TypeError, "sampling_ratio"),
    (True, {"output_size": 4, "image_size": IMAGE_SIZE, "mapper": "mmdet"}, ValueError, "mapper"),
    (True, {"output_size": 4, "image_size": IMAGE_SIZE, "canonical_size": 0}, ValueError, "canonical_size"),
    (True, {"output_size": 4, "image_size": IMAGE_SIZE, "canonical_level": 4.5}, TypeError, "canonical_level"),
    (True, {"output_size": 4, "image_size": IMAGE_SIZE, "impl": "cuda"}, ValueError, "impl"),
]


# Fixed random weights of the scalar loss sum(out * LOSS_WEIGHTS), so that gradients are not all alike.
LOSS_WEIGHTS = jnp.asarray(np.random.default_rng(2).standard_normal((2, 3, OUTPUT_SIZE, OUTPUT_SIZE, 3)), jnp.float32)


def pool(features: jax.Array, boxes: jax.Array) -> jax.Array:
    """The functional RoIAlign that the RoIAlign modules of the tests must reproduce."""
    return jr.roi_align(features, boxes, OUTPUT_SIZE, **ROI_ALIGN_KWARGS)


def multiscale_pool(levels, boxes: jax.Array) -> jax.Array:
    """The functional multiscale RoIAlign that the MultiScaleRoIAlign modules of the tests must reproduce."""
    return jr.multiscale_roi_align(levels, boxes, OUTPUT_SIZE, **MULTISCALE_KWARGS)


# kind -> (its features, its functional reference); the test files map kind to their module.
KINDS = {"roi_align": (FEATURES, pool), "multiscale": (LEVELS, multiscale_pool)}


def recording(function: Callable, calls: list[dict]) -> Callable:
    """A stand-in for function that appends its bound arguments (name -> value) to calls and returns 0."""
    signature = inspect.signature(function)

    def record(*args, **kwargs):
        calls.append(dict(signature.bind(*args, **kwargs).arguments))
        return jnp.zeros(())

    return record


def _loss(fn: Callable) -> Callable:
    return lambda features, boxes: jnp.sum(fn(features, boxes) * LOSS_WEIGHTS)


def assert_vmap_matches(kind: str, apply: Callable) -> None:
    """apply (features, boxes) -> the kind's module output, vmapped over maps and box sets, equals the function's."""
    import chex

    features, reference = KINDS[kind]
    features = jax.tree.map(lambda x: jnp.stack([x, -x]), features)
    boxes = jnp.stack([BOXES, BOXES + 3.0])
    got = jax.vmap(apply)(features, boxes)
    assert got.shape == (2, 2, 3, OUTPUT_SIZE, OUTPUT_SIZE, 3)
    chex.assert_trees_all_equal(got, jax.vmap(reference)(features, boxes))


def assert_grads_match(kind: str, apply: Callable) -> None:
    """Gradients through the module w.r.t. features and boxes equal the function's; every box gets one."""
    import chex

    features, reference = KINDS[kind]
    got = jax.grad(_loss(apply), (0, 1))(features, BOXES)
    chex.assert_trees_all_equal(got, jax.grad(_loss(reference), (0, 1))(features, BOXES))
    assert np.all(np.abs(np.asarray(got[1])).sum(-1) > 0)


def assert_jit_matches(roi: Callable, multiscale: Callable) -> None:
    """Both modules (as applied functions) under jit equal the functions."""
    import chex

    def modules_and_functions(features, levels, boxes):
        modules = roi(features, boxes), multiscale(levels, boxes)
        return modules, (pool(features, boxes), multiscale_pool(levels, boxes))

    got, want = jax.jit(modules_and_functions)(FEATURES, LEVELS, BOXES)
    chex.assert_trees_all_equal(got, want)
