"""The twins of rotated RoIAlign (Detectron2, mmcv), Detectron2's ROIPooler types, mmcv's roi_pool,
torchvision's position-sensitive ops and TF crop_and_resize on integer images.

Detectron2 and mmcv cannot be installed here: their twins are pinned by identities between
them and with the core ops, and by the NumPy transcriptions of their arithmetic
(``tests/reference.py``, ``docs/conventions.md`` sections 5 and 7).  torchvision and
TensorFlow are also checked against their committed fixtures (``test_fixtures.py``).
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_roialign as jr
from jax_roialign.compat import detectron2, mmcv, tensorflow, torchvision
from tests import cases, reference

pytestmark = pytest.mark.usefixtures("unoptimized_compiles")

N, C, H, W = 2, 3, 12, 14


def rotated_problem(seed: int, scale: float = 0.5):
    """NCHW features and (K, 6) [batch, cx, cy, w, h, angle_degrees] rows."""
    features = cases.random_features(seed, (N, H, W, C)).transpose(0, 3, 1, 2)
    boxes = cases.rotated_boxes(seed, 5, H, W, scale)
    batch = (np.arange(len(boxes)) % N).astype(np.float64)
    return features, np.concatenate([batch[:, None], boxes], axis=1)


@pytest.mark.usefixtures("x64")
def test_detectron2_degrees_and_mmcv_radians_and_clockwise():
    features, rois = rotated_problem(0)
    x = jnp.asarray(features)
    d2 = detectron2.roi_align_rotated(x, jnp.asarray(rois), (2, 3), 0.5, 2)
    want = reference.roi_align_rotated(
        features.transpose(0, 2, 3, 1), rois[:, 1:], rois[:, 0].astype(int), (2, 3), 0.5, 2
    ).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(d2, want, rtol=1e-12, atol=1e-12)
    radians = rois.copy()
    radians[:, 5] = rois[:, 5] * math.pi / 180  # rounded once, as Detectron2's angle * M_PI / 180.0
    chex.assert_trees_all_equal(mmcv.roi_align_rotated(x, jnp.asarray(radians), (2, 3), 0.5, 2), d2)
    negated = radians * np.array([1, 1, 1, 1, 1, -1])
    clockwise = mmcv.roi_align_rotated(x, jnp.asarray(negated), (2, 3), 0.5, 2, clockwise=True)
    chex.assert_trees_all_equal(clockwise, d2)
    # mmcv aligned=False is the core op's aligned=False (which takes degrees).
    legacy = mmcv.roi_align_rotated(x, jnp.asarray(radians), (2, 3), 0.5, 2, aligned=False)
    core = jr.roi_align_rotated(
        x, jnp.asarray(rois), (2, 3), spatial_scale=0.5, sampling_ratio=2, aligned=False, data_format="NCHW"
    )
    np.testing.assert_allclose(legacy, core, rtol=1e-13, atol=1e-13)


@pytest.mark.usefixtures("x64")
def test_mmcv_adaptive_grid_takes_ceilf_of_the_quotient():
    """h' / out_h = 2.000000001 is 2 in float32: mmcv samples a 2-row grid where Detectron2 takes 3."""
    features = cases.random_features(1, (1, 9, 9, 1)).transpose(0, 3, 1, 2)
    rois = np.array([[0.0, 4.3, 4.1, 3.2, 6.000000003, 0.0]])
    got = mmcv.roi_align_rotated(jnp.asarray(features), jnp.asarray(rois), (3, 2), 1.0, 0)
    nhwc, boxes = features.transpose(0, 2, 3, 1), rois[:, 1:]
    mmcv_want = reference.roi_align_rotated(nhwc, boxes, [0], (3, 2), 1.0, 0, radians=True, float32_grid=True)
    d2_want = reference.roi_align_rotated(nhwc, boxes, [0], (3, 2), 1.0, 0)
    np.testing.assert_allclose(got, mmcv_want.transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-12)
    assert np.abs(mmcv_want - d2_want).max() > 1e-3
    d2 = detectron2.roi_align_rotated(jnp.asarray(features), jnp.asarray(rois), (3, 2), 1.0, 0)
    np.testing.assert_allclose(d2, d2_want.transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-12)


def test_roi_pooler_types_and_levels():
    """Each box is pooled from floor(4 + log2(sqrt(area) / 224 + 1e-8)) clamped to the levels (area = w * h
    for rotated boxes); "ROIPool" is torchvision's RoIPool, "ROIAlign" legacy and "ROIAlignV2" half-pixel."""
    rng = np.random.default_rng(0)
    levels = [jnp.asarray(rng.standard_normal((2, C, 40 // 2**i, 48 // 2**i)), jnp.float32) for i in range(2)]
    scales = (1 / 8, 1 / 16)  # levels 3 and 4
    level_of_box = (0, 1, 1)
    # sqrt(area) 40 (level 2, clamped to 3), 224 (exactly level 4), 300 (level 5, clamped to 4).
    rotated = np.array([[0, 50, 40, 40, 40, 30], [1, 150, 120, 448, 112, 95], [0, 160, 130, 300, 300, 10]], np.float32)
    corners = np.array([[0, 10, 20, 50, 60], [1, 30, 20, 254, 244], [0, 5, 5, 305, 305]], np.float32)
    poolers = {
        "ROIAlignRotated": (rotated, lambda lv, rows: detectron2.roi_align_rotated(levels[lv], rows, 2, scales[lv], 2)),
        "ROIPool": (corners, lambda lv, rows: torchvision.roi_pool(levels[lv], rows, 2, scales[lv])),
        "ROIAlign": (corners, lambda lv, rows: detectron2.roi_align(levels[lv], rows, 2, scales[lv], 2, False)),
        "ROIAlignV2": (corners, lambda lv, rows: detectron2.roi_align(levels[lv], rows, 2, scales[lv], 2)),
    }
    for pooler_type, (rois, pool) in poolers.items():
        got = detectron2.roi_pooler(levels, jnp.asarray(rois), 2, scales, 2, pooler_type)
        every_level = [pool(lv, jnp.asarray(rois)) for lv in range(len(levels))]  # every box on every level
        want = jnp.stack([every_level[lv][i] for i, lv in enumerate(level_of_box)])
        chex.assert_trees_all_close(got, want, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="pooler_type must be one of .* got 'ROIAlignV3'"):
        detectron2.roi_pooler(levels, jnp.asarray(corners), 2, scales, 2, "ROIAlignV3")
    with pytest.raises(ValueError, match=r"rois must have shape \(K, 6\)"):
        detectron2.roi_pooler(levels, jnp.asarray(corners), 2, scales, 2, "ROIAlignRotated")


@pytest.mark.usefixtures("x64")
def test_mmcv_roi_pool_matches_its_arithmetic():
    """No rounding, x2 + 1 before scaling, floor / ceil of q * bin + start; boxes of size <= 0 give zeros and
    no gradient; the gradient of the others goes to the first argmax."""
    features = cases.random_features(2, (N, H, W, C))
    boxes = np.concatenate(
        [cases.edge_boxes(H, W, 0.5), [[3.3, 2.2, 10.7, 11.5], [6.0, 4.0, 3.0, 9.0], [1.0, 1.0, -1.5, 5.0]]]
    )
    batch = np.arange(len(boxes)) % N
    rois = np.concatenate([batch[:, None], boxes], axis=1)
    x = jnp.asarray(features.transpose(0, 3, 1, 2))
    got = mmcv.roi_pool(x, jnp.asarray(rois), (2, 3), 0.5)
    want = reference.mmcv_roi_pool(features, boxes, batch, (2, 3), 0.5).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(got, want)
    skipped = ((boxes[:, 2] + 1) * 0.5 - boxes[:, 0] * 0.5 <= 0) | ((boxes[:, 3] + 1) * 0.5 - boxes[:, 1] * 0.5 <= 0)
    assert skipped[-1] and not skipped[-3]
    cot = np.zeros(got.shape)
    cot[skipped] = 1.0
    grad = jax.grad(lambda x: jnp.vdot(mmcv.roi_pool(x, jnp.asarray(rois), (2, 3), 0.5), cot))(x)
    assert not np.any(np.asarray(grad))
    one = jax.grad(lambda x: mmcv.roi_pool(x, jnp.asarray(rois[-3:-2]), (2, 3), 0.5).sum())(x)
    assert np.asarray(one).sum() == 2 * 3 * C and np.all(np.asarray(one) == np.round(np.asarray(one)))


def test_crop_and_resize_integer_images():
    """Every integer dtype TF accepts, read as float32 per pixel (int64 without 64-bit JAX types); others rejected."""
    boxes = np.array([[0.1, 0.2, 0.8, 0.9], [0.0, 0.0, 1.0, 1.0]], np.float32)
    idx = np.array([0, 0], np.int32)
    image = np.arange(2 * 3 * 4 * 5).reshape(1, 6, 4, 5)
    float_out = tensorflow.crop_and_resize(image.astype(np.float32), boxes, idx, (3, 2))
    for dtype in ("uint8", "uint16", "int8", "int16", "int32", "int64"):
        out = tensorflow.crop_and_resize(image.astype(dtype), boxes, idx, (3, 2))
        assert out.dtype == jnp.float32
        chex.assert_trees_all_equal(out, float_out)
    chex.assert_trees_all_equal(
        tensorflow.crop_and_resize(jnp.asarray(image, jnp.int16), boxes, idx, (3, 2)), float_out
    )
    big = np.full((1, 2, 2, 1), 2**40 + 2**17 + 1, np.int64)  # float32 rounds it to 2**40 + 2**17
    whole = tensorflow.crop_and_resize(big, boxes[1:], idx[1:], (1, 1))
    assert float(whole[0, 0, 0, 0]) == float(np.float32(2**40 + 2**17 + 1))
    grad = jax.grad(lambda b: tensorflow.crop_and_resize(image.astype(np.uint8), b, idx, (3, 2)).sum())(boxes)
    chex.assert_trees_all_close(
        grad, jax.grad(lambda b: tensorflow.crop_and_resize(image.astype(np.float32), b, idx, (3, 2)).sum())(boxes)
    )
    for dtype in ("uint32", "uint64", "bool", "complex64"):
        with pytest.raises(
            TypeError, match=f"image must have one of tf.image.crop_and_resize's dtypes .* got dtype {dtype}"
        ):
            tensorflow.crop_and_resize(np.zeros((1, 4, 4, 1), dtype), boxes, idx, (2, 2))


@pytest.mark.usefixtures("x64")
def test_torchvision_ps_roi_align_empty_bins_are_nan_or_signed_zero():
    """torchvision divides an empty bin's sum by gh * gw: NaN for a zero grid, -0.0 for a negative one; no gradient."""
    features = cases.random_features(3, (1, 8, 7, 8)).transpose(0, 3, 1, 2)
    rois = np.array(
        [
            [0, 1.0, 1.0, 5.0, 6.0],  # ordinary
            [0, 3.0, 2.0, 3.0, 6.0],  # zero width: grid 0, NaN
            [0, 5.0, 1.0, 2.0, 6.0],  # inverted in x by more than a bin: grid -1 x 3, -0.0
            [0, 5.0, 6.0, 2.0, 1.0],  # inverted in x and y: grid (-1) x (-1), +0.0
        ]
    )
    x = jnp.asarray(features)
    out = np.asarray(torchvision.ps_roi_align(x, jnp.asarray(rois), 2))
    assert np.all(np.isfinite(out[0])) and np.all(np.isnan(out[1]))
    assert np.all(out[2:] == 0) and np.all(np.signbit(out[2])) and not np.any(np.signbit(out[3]))
    core = np.asarray(jr.ps_roi_align(x, jnp.asarray(rois), 2, data_format="NCHW"))
    np.testing.assert_array_equal(core[0], out[0])
    assert np.all(core[1:] == 0)
    empty = jnp.asarray([0.0, 1.0, 1.0, 1.0])[:, None, None, None]
    grad = jax.grad(lambda x: jnp.nansum(torchvision.ps_roi_align(x, jnp.asarray(rois), 2) * empty))(x)
    assert not np.any(np.asarray(grad))
