"""examples/train_box_head.py: data, box deltas, config checks, and a short training run whose loss falls."""

from __future__ import annotations

import importlib.util
import math
import pathlib
import sys

import chex
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("optax")

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "train_box_head.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("train_box_head", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


tbh = _load_example()


def test_encode_deltas_by_hand_and_decode_inverts():
    proposal = jnp.array([[0.0, 0.0, 10.0, 10.0]])
    target = jnp.array([[1.0, 2.0, 13.0, 12.0]])
    # Centres (5, 5) -> (7, 7), sizes (10, 10) -> (12, 10); weights (10, 10, 5, 5).
    want = np.array([[10 * 2 / 10, 10 * 2 / 10, 5 * math.log(12 / 10), 0.0]])
    deltas = tbh.encode_deltas(proposal, target)
    np.testing.assert_allclose(deltas, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tbh.decode_deltas(proposal, deltas), target, rtol=1e-6)


def test_box_iou_by_hand():
    a = jnp.array([[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0]])
    b = jnp.array([[2.0, 0.0, 6.0, 4.0], [5.0, 5.0, 6.0, 6.0], [1.0, 1.0, 1.0, 1.0]])
    # Overlap 2x4 = 8 of union 16 + 16 - 8; disjoint; two empty boxes.
    np.testing.assert_allclose(tbh.box_iou(a, b), [8 / 24, 0.0, 0.0])


def test_shape_masks_fill_their_box_differently():
    box = np.array([2.0, 3.0, 14.0, 15.0])  # 12 x 12 pixels
    masks = [tbh.shape_mask(kind, box, 20) for kind in range(len(tbh.SHAPES))]
    square = masks[tbh.SHAPES.index("square")]
    assert square.sum() == 144 and square[3:15, 2:14].all()
    for mask in masks:
        rows, cols = np.nonzero(mask)
        assert rows.min() >= 3 and rows.max() <= 14 and cols.min() >= 2 and cols.max() <= 13
    assert len({m.tobytes() for m in masks}) == len(masks)


def test_make_batch_is_padded_masked_and_reproducible():
    config = tbh.TrainConfig(max_shapes=3, proposals_per_shape=2)
    batch = tbh.make_batch(np.random.default_rng(7), config, 5)
    again = tbh.make_batch(np.random.default_rng(7), config, 5)
    chex.assert_trees_all_equal(batch, again)
    assert batch["images"].shape == (5, 64, 64, 3) and batch["proposals"].shape == (5, 6, 4)
    valid = batch["valid"]
    assert valid[:, :2].all() and valid.sum(1).min() >= 2 and (valid.sum(1) % 2 == 0).all()
    assert np.isfinite(np.asarray(tbh.encode_deltas(batch["proposals"], batch["gt_boxes"]))).all()
    iou = np.asarray(tbh.box_iou(batch["proposals"], batch["gt_boxes"]))[valid]
    assert iou.min() > 0.2 and 0.5 < iou.mean() < 0.95
    assert set(np.unique(batch["labels"][valid])) <= set(range(len(tbh.SHAPES)))


@pytest.mark.parametrize(
    "field,value",
    [
        ("steps", 0),
        ("batch_size", 0),
        ("seed", -1),
        ("image_size", 60),
        ("max_side", 40),
        ("jitter", 0.8),
        ("learning_rate", 0.0),
    ],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        tbh.TrainConfig(**{field: value})


@pytest.mark.parametrize("field,value", [("steps", "5"), ("batch_size", 2.0), ("learning_rate", None), ("seed", True)])
def test_config_rejects_bad_types(field, value):
    with pytest.raises(TypeError, match=field):
        tbh.TrainConfig(**{field: value})


def test_flags_map_onto_config():
    config = tbh.parse_config(["--steps", "7", "--batch-size", "3", "--seed", "5", "--learning-rate", "0.01"])
    assert config == tbh.TrainConfig(steps=7, batch_size=3, seed=5, learning_rate=0.01)


def test_short_training_run_lowers_the_loss():
    # A narrower model than the default keeps compilation and steps within the test budget.
    config = tbh.TrainConfig(steps=80, batch_size=16, seed=0, channels=16, pool_size=5, eval_images=16, log_every=0)
    result = tbh.train(config, verbose=False)
    losses = np.array([h["loss"] for h in result["history"]])
    assert len(losses) == 80 and np.isfinite(losses).all()
    assert losses[-10:].mean() < 0.85 * losses[:10].mean(), losses
    held_out = result["eval"]
    assert set(held_out) == {"loss", "cls_loss", "box_loss", "accuracy", "iou_proposals", "iou_refined"}
    assert all(np.isfinite(v) for v in held_out.values())
