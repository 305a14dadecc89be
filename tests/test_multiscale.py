"""multiscale_roi_align: level assignment rules and agreement with per-level roi_align."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_roialign as jr
from jax_roialign.multiscale import box_levels, infer_scale

BOX_SIDES = np.array([0.0, 50.0, 111.9, 112.0, 224.0, 447.0, 448.0, 2000.0])


def _square_boxes(sides: np.ndarray) -> jnp.ndarray:
    return jnp.asarray(np.stack([np.zeros_like(sides), np.zeros_like(sides), sides, sides], 1), jnp.float32)


@pytest.mark.parametrize(
    "mapper,expected",
    [
        # sqrt(area) 112 and 448 sit exactly on level boundaries: both eps variants round them up.
        ("torchvision", [0, 0, 0, 1, 2, 2, 3, 3]),
        ("detectron2", [0, 0, 0, 1, 2, 2, 3, 3]),
    ],
)
def test_box_levels(mapper, expected):
    levels = box_levels(_square_boxes(BOX_SIDES), min_level=2, max_level=5, mapper=mapper)
    np.testing.assert_array_equal(levels, expected)


def test_inferred_scales_round_like_torchvision():
    assert [infer_scale((s, 10), (800, 10)) for s in (200, 100, 50, 13)] == [0.25, 0.125, 0.0625, 0.015625]


def test_matches_per_level_roi_align_under_jit():
    rng = np.random.default_rng(0)
    levels = [jnp.asarray(rng.standard_normal((2, 64 // 2**i, 80 // 2**i, 3)), jnp.float32) for i in range(3)]
    scales = [1 / 4, 1 / 8, 1 / 16]
    corner = rng.uniform(0, 200, (2, 5, 2))
    boxes = jnp.asarray(np.concatenate([corner, corner + rng.uniform(10, 300, (2, 5, 2))], -1), jnp.float32)
    fn = jax.jit(lambda f, b: jr.multiscale_roi_align(f, b, 4, spatial_scales=scales, sampling_ratio=2))
    out = fn(levels, boxes)
    assert out.shape == (2, 5, 4, 4, 3)
    level = np.asarray(box_levels(boxes.reshape(-1, 4), min_level=2, max_level=4))
    for i, (x, s) in enumerate(zip(levels, scales, strict=True)):
        want = jr.roi_align(x, boxes, 4, spatial_scale=s, sampling_ratio=2).reshape(-1, 4, 4, 3)
        np.testing.assert_array_equal(np.asarray(out).reshape(-1, 4, 4, 3)[level == i], np.asarray(want)[level == i])
    assert set(level) == {0, 1, 2}


def test_requires_scales_or_image_size():
    with pytest.raises(ValueError, match="image_size is required"):
        jr.multiscale_roi_align([jnp.zeros((1, 8, 8, 2))], jnp.zeros((1, 4)), 2)


def test_valid_mask_zeroes_padding_rows_and_their_gradients():
    rng = np.random.default_rng(1)
    levels = [jnp.asarray(rng.standard_normal((2, 32 // 2**i, 40 // 2**i, 2)), jnp.float32) for i in range(2)]
    corner = rng.uniform(0, 80, (2, 3, 2))
    boxes = jnp.asarray(np.concatenate([corner, corner + rng.uniform(8, 120, (2, 3, 2))], -1), jnp.float32)
    valid = jnp.asarray([[True, False, True], [False, True, True]])

    def pool(feats, valid=None):
        return jr.multiscale_roi_align(feats, boxes, 3, valid=valid, spatial_scales=(1 / 4, 1 / 8), sampling_ratio=2)

    out = jax.jit(pool)(levels, valid)
    full = pool(levels)
    mask = np.asarray(valid)[..., None, None, None]
    np.testing.assert_array_equal(np.asarray(out), np.where(mask, np.asarray(full), 0.0))
    # A padding row reads nothing: its cotangent reaches no feature.
    cotangent = jnp.where(mask, 0.0, 1.0)
    grads = jax.grad(lambda f: jnp.sum(pool(f, valid) * cotangent))(levels)
    assert all(not np.any(np.asarray(g)) for g in grads)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"valid": jnp.ones((3,), bool)}, ValueError, r"valid must have shape \(2, 3\)"),
        ({"valid": jnp.ones((2, 3), jnp.int32)}, TypeError, "valid must be a bool array"),
        ({"spatial_scales": (1 / 8, 1 / 4)}, ValueError, "strictly decreasing"),
        ({"spatial_scales": (1 / 4,)}, ValueError, r"one entry per level \(2\)"),
        ({"spatial_scales": (1 / 4, 1 / 8), "mapper": "mmdet"}, ValueError, "mapper"),
    ],
)
def test_bad_level_arguments_are_named(kwargs, error, match):
    levels = [jnp.zeros((2, 16, 16, 1)), jnp.zeros((2, 8, 8, 1))]
    kwargs = {"spatial_scales": (1 / 4, 1 / 8), **kwargs}
    with pytest.raises(error, match=match):
        jr.multiscale_roi_align(levels, jnp.zeros((2, 3, 4)), 2, **kwargs)
