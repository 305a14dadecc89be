"""Mask pasting: Detectron2's identities, torchvision's definition, the forms, thresholds, chunks, gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jax_roialign as jr
from jax_roialign.compat import torch as torch_compat
from jax_roialign.xla import paste_masks as xla_paste

F32 = np.float32
# Edges on quarter pixels away from pixel centres; inside, across every edge, larger than the image.
BOXES = np.array(
    [[3.25, 2.75, 17.0, 11.25], [-4.5, 6.25, 9.75, 25.0], [20.75, -3.0, 34.25, 8.25], [-6.0, -5.25, 40.0, 30.0]], F32
)
H, W = 21, 31


def _masks(k: int, m: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((k, m, m)).astype(F32)


def test_detectron2_full_box_mask_pastes_to_the_box():
    """A mask of ones, thresholded at 0.5, is every pixel whose centre lies inside the box (clipped)."""
    out = np.asarray(jr.paste_masks(np.ones((4, 14, 14), F32), BOXES, (H, W), convention="detectron2"))
    y, x = np.arange(H)[:, None] + 0.5, np.arange(W)[None, :] + 0.5
    for k, (x0, y0, x1, y1) in enumerate(BOXES):
        np.testing.assert_array_equal(out[k], (x > x0) & (x < x1) & (y > y0) & (y < y1), err_msg=str(k))


def test_boxes_off_the_image_clip():
    """Pasting onto the image is the crop of pasting onto a larger canvas (boxes moved by the margin)."""
    masks, margin = _masks(4, 14), 8
    soft = jr.paste_masks(masks, BOXES, (H, W), convention="detectron2", threshold=None)
    moved = BOXES + F32(margin)
    big = jr.paste_masks(masks, moved, (H + 2 * margin, W + 2 * margin), convention="detectron2", threshold=None)
    np.testing.assert_array_equal(soft, big[:, margin : margin + H, margin : margin + W])
    # torchvision truncates box corners toward zero, so moving them is not exact: clip at the far edges only.
    inside = BOXES[:1] + F32(10)
    near = jr.paste_masks(masks[:1], inside, (H, W), threshold=None)
    far = jr.paste_masks(masks[:1], inside, (H + 15, W + 15), threshold=None)
    np.testing.assert_array_equal(near, far[:, :H, :W])
    assert np.asarray(near)[0, -1].any() and np.asarray(far)[0, H:].any()


def _torchvision_box(box: np.ndarray, m: int) -> np.ndarray:
    """expand_boxes + .to(int64) in float32, written out independently of core.paste."""
    x0, y0, x1, y1 = box.astype(F32)
    scale = F32((m + 2) / m)
    w_half, h_half = (x1 - x0) * F32(0.5) * scale, (y1 - y0) * F32(0.5) * scale
    xc, yc = (x1 + x0) * F32(0.5), (y1 + y0) * F32(0.5)
    return np.trunc(np.array([xc - w_half, yc - h_half, xc + w_half, yc + h_half], F32)).astype(int)


def test_torchvision_is_interpolate_of_the_padded_mask_written_into_the_box():
    """torchvision's definition, with interpolate as compat.torch computes it (fixture-checked against torch)."""
    masks = _masks(4, 7, seed=1)
    out = np.asarray(jr.paste_masks(masks, BOXES, (H, W), threshold=None))
    for k in range(4):
        x0, y0, x1, y1 = _torchvision_box(BOXES[k], 7)
        h, w = max(y1 - y0 + 1, 1), max(x1 - x0 + 1, 1)
        padded = np.pad(masks[k], 1)[None, None]
        resized = np.asarray(torch_compat.interpolate(padded, size=(h, w), mode="bilinear"))[0, 0]
        expected = np.zeros((H, W), F32)
        ya, yb, xa, xb = max(y0, 0), min(y1 + 1, H), max(x0, 0), min(x1 + 1, W)
        expected[ya:yb, xa:xb] = resized[ya - y0 : yb - y0, xa - x0 : xb - x0]
        np.testing.assert_allclose(out[k], expected, rtol=1e-6, atol=1e-7, err_msg=str(k))


def test_the_conventions_agree_inside_a_constant_mask():
    box = np.array([[4.0, 3.0, 28.0, 18.0]], F32)
    out = {c: np.asarray(jr.paste_masks(np.full((1, 14, 14), 0.7, F32), box, (H, W), convention=c, threshold=None))
           for c in ("torchvision", "detectron2")}  # fmt: skip
    inner = (slice(5, 16), slice(6, 26))
    np.testing.assert_allclose(out["torchvision"][0][inner], 0.7, rtol=1e-6)
    np.testing.assert_allclose(out["detectron2"][0][inner], 0.7, rtol=1e-6)


def test_detectron2_pastes_inside_its_window_only():
    """Detectron2 (CPU) writes [floor(x0) - 1, ceil(x1) + 1): a wide box's bilinear tail beyond it is cut."""
    box = np.array([[10.3, 2.0, 200.3, 12.0]], F32)
    soft = np.asarray(jr.paste_masks(np.ones((1, 7, 7), F32), box, (16, 220), convention="detectron2", threshold=None))
    u = (np.array([8.5, 9.5]) - 10.3) / 190.0 * 7 - 0.5  # pixels 8 and 9: both within a pixel of the mask
    assert np.all(u > -1)
    assert np.all(soft[0, 5, :9] == 0) and soft[0, 5, 9] == pytest.approx(1 + u[1], rel=1e-5)


def test_per_image_forms_and_image_sizes():
    masks, sizes = _masks(6, 7, seed=2), [(21, 31), (15, 24)]
    boxes = np.concatenate([BOXES[:3], BOXES[1:4] * F32(0.7)])
    per_image = jr.paste_masks(masks.reshape(2, 3, 7, 7), boxes.reshape(2, 3, 4), sizes, threshold=None)
    flat = jr.paste_masks(masks, boxes, sizes, batch_indices=np.repeat([0, 1], 3), threshold=None)
    assert per_image.shape == (2, 3, 21, 31)
    np.testing.assert_array_equal(per_image.reshape(6, 21, 31), flat)
    alone = jr.paste_masks(masks[3:], boxes[3:], (15, 24), threshold=None)
    np.testing.assert_array_equal(flat[3:, :15, :24], alone)
    assert not np.asarray(flat)[3:, 15:].any() and not np.asarray(flat)[3:, :, 24:].any()
    # Under jit an index outside [0, N) cannot be checked: that mask pastes nothing.
    pasted = jax.jit(lambda i: jr.paste_masks(masks[:1], boxes[:1], sizes, batch_indices=i, threshold=None))
    assert not np.asarray(pasted(np.array([5]))).any()


def test_thresholds():
    masks = _masks(4, 14, seed=3)
    soft = np.asarray(jr.paste_masks(masks, BOXES, (H, W), convention="detectron2", threshold=None))
    binary = jr.paste_masks(masks, BOXES, (H, W), convention="detectron2", threshold=0.5)
    scaled = jr.paste_masks(masks, BOXES, (H, W), convention="detectron2", threshold=-1.0)
    assert binary.dtype == jnp.bool_ and scaled.dtype == jnp.uint8
    np.testing.assert_array_equal(binary, soft >= 0.5)
    np.testing.assert_array_equal(scaled, (soft * F32(255)).astype(np.uint8))


def test_thresholded_masks_in_chunks_equal_one_pass(monkeypatch):
    masks = _masks(4, 7, seed=4)
    whole = jr.paste_masks(masks, BOXES, (H, W), threshold=0.4)
    monkeypatch.setattr(xla_paste, "CHUNK_BYTES", 2 * H * W * 4)  # 2 masks per chunk
    limits = jnp.full((4, 2), jnp.array([H, W]))
    chunked = jax.jit(lambda m, b: xla_paste.paste_masks(m, b, limits, (H, W), "torchvision", 0.4))(masks, BOXES)
    np.testing.assert_array_equal(chunked, whole)


@pytest.mark.parametrize("convention", xla_paste.CONVENTIONS)
def test_gradients_match_finite_differences(convention, x64):
    masks = jnp.asarray(_masks(2, 4, seed=5), jnp.float64)
    boxes = jnp.asarray(BOXES[:2] * 0.4 + 0.1, jnp.float64)

    def paste(masks, boxes):
        return jr.paste_masks(masks, boxes, (9, 13), convention=convention, threshold=None)

    check_grads(lambda m: paste(m, boxes), (masks,), order=1, modes=("rev",))
    if convention == "detectron2":  # torchvision truncates its boxes: no box gradient
        check_grads(jax.jit(lambda b: paste(masks, b)), (boxes,), order=1, modes=("rev",), eps=1e-4)


def test_transformations_compose():
    """vmap, jvp, checkpoint and scan over paste_masks (soft and thresholded), in one process."""
    masks = jnp.asarray(_masks(6, 7, seed=6)).reshape(2, 3, 7, 7)
    boxes = jnp.asarray(np.stack([BOXES[:3], BOXES[1:4]]))
    paste = lambda m, b: jr.paste_masks(m, b, (H, W), convention="detectron2", threshold=None)  # noqa: E731
    direct = jnp.stack([paste(m, b) for m, b in zip(masks, boxes, strict=True)])
    np.testing.assert_allclose(jax.vmap(paste)(masks, boxes), direct, rtol=1e-6, atol=1e-7)
    scanned = jax.lax.scan(lambda c, mb: (c, jax.checkpoint(paste)(*mb)), 0, (masks, boxes))[1]
    np.testing.assert_allclose(scanned, direct, rtol=1e-6, atol=1e-7)
    _, tangent = jax.jvp(lambda m: paste(m, boxes[0]), (masks[0],), (masks[1],))
    np.testing.assert_allclose(tangent, paste(masks[1], boxes[0]), rtol=1e-5, atol=1e-6)  # linear in the masks
    binary = jax.vmap(lambda m, b: jr.paste_masks(m, b, (H, W), threshold=0.5))(masks, boxes)
    np.testing.assert_array_equal(binary[1], jr.paste_masks(masks[1], boxes[1], (H, W), threshold=0.5))


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"convention": "mmdet"}, ValueError, "convention"),
        ({"threshold": float("nan")}, ValueError, "threshold"),
        ({"image_size": (21,)}, TypeError, "image_size"),
        ({"image_size": [(21, 31), (10, 10)]}, ValueError, "batch_indices"),
        ({"boxes": np.zeros((3, 4), F32)}, ValueError, "masks"),
        ({"boxes": np.zeros((4, 4), np.int32)}, TypeError, "boxes"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, error, match):
    args = {"masks": np.zeros((4, 7, 7), F32), "boxes": BOXES, "image_size": (H, W), **kwargs}
    with pytest.raises(error, match=match):
        jr.paste_masks(args.pop("masks"), args.pop("boxes"), args.pop("image_size"), **args)
