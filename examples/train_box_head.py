"""Train a small detector box head on synthetic shapes with multiscale RoIAlign (Flax linen + optax).

    python examples/train_box_head.py --steps 1000 --batch-size 16 --seed 0

Each image is noise with a few coloured shapes (square, disk, triangle, cross) of random
size, aspect, position and colour.  Proposals are the ground-truth boxes jittered in
position and scale.  A two-level conv backbone (strides 4 and 8, FPN-style top-down sum)
feeds :func:`jax_roialign.multiscale_roi_align`, which pools each proposal from the level
its size selects with static shapes: proposals are per-image padded (N, R, 4) with a
validity mask that drops the padding from the loss and the metrics.  The head classifies
the shape and regresses the Faster R-CNN box deltas (dx, dy, dw, dh) from the proposal to
its ground-truth box.  Data are generated on the fly; the held-out set comes from its own
random stream.  Everything is deterministic given --seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import numbers
import time
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jax_roialign as jr

SHAPES: tuple[str, ...] = ("square", "disk", "triangle", "cross")
# Faster R-CNN's weights on (dx, dy, dw, dh): they scale the targets to unit-ish variance.
DELTA_WEIGHTS: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
STRIDES: tuple[int, int] = (4, 8)
# Level rule k = floor(3 + log2(sqrt(area) / 16)) clamped to [2, 3]: boxes under 16 px pool
# from the stride-4 map, larger ones from stride 8 (torchvision's 224 / level 4 would send
# every box of these small images to the finest level).
CANONICAL_SIZE = 16.0
CANONICAL_LEVEL = 3

Params = dict[str, Any]  # a Flax parameter tree
Batch = dict[str, Any]  # the arrays of make_batch, numpy or jax


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of the example; every field is validated on construction.

    Attributes:
      steps: optimisation steps (>= 1).
      batch_size: images per step (>= 1).
      seed: seeds the parameters, the training stream and the held-out stream (>= 0).
      learning_rate: peak Adam learning rate (cosine decay to 0 over ``steps``).
      image_size: square image side in pixels, a multiple of 8 (the coarsest stride) and >= 32.
      max_shapes: shapes per image are drawn from [1, max_shapes].
      min_side, max_side: shape width and height in pixels are drawn from [min_side, max_side].
      proposals_per_shape: jittered proposals per ground-truth box; R = max_shapes * this.
      jitter: standard deviation of the proposal centre shift (in box sizes) and of its log-scale.
      channels: channels of both pyramid levels.
      pool_size: RoIAlign output side.
      eval_images: held-out images, evaluated in batches of ``batch_size``.
      log_every: steps between progress lines (0: no progress lines).
    """

    steps: int = 1000
    batch_size: int = 16
    seed: int = 0
    learning_rate: float = 3e-3
    image_size: int = 64
    max_shapes: int = 4
    min_side: int = 8
    max_side: int = 28
    proposals_per_shape: int = 2
    jitter: float = 0.1
    channels: int = 32
    pool_size: int = 7
    eval_images: int = 256
    log_every: int = 50

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            kind, what = (numbers.Integral, "an int") if isinstance(field.default, int) else (numbers.Real, "a number")
            if isinstance(value, bool) or not isinstance(value, kind):
                raise TypeError(f"{field.name} must be {what}, got {value!r}")
        for name in ("steps", "batch_size", "max_shapes", "min_side", "proposals_per_shape", "channels", "pool_size"):
            _require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        _require(self.seed >= 0, "seed", self.seed, ">= 0")
        _require(self.eval_images >= 0, "eval_images", self.eval_images, ">= 0")
        _require(self.log_every >= 0, "log_every", self.log_every, ">= 0")
        _require(
            self.image_size >= 32 and self.image_size % STRIDES[-1] == 0,
            "image_size",
            self.image_size,
            f"a multiple of {STRIDES[-1]} and >= 32",
        )
        _require(
            self.min_side <= self.max_side <= self.image_size // 2,
            "max_side",
            self.max_side,
            f"in [min_side={self.min_side}, image_size / 2 = {self.image_size // 2}]",
        )
        _require(self.learning_rate > 0, "learning_rate", self.learning_rate, "> 0")
        _require(0 <= self.jitter <= 0.5, "jitter", self.jitter, "in [0, 0.5]")

    @property
    def rois_per_image(self) -> int:
        """R, the padded number of proposals per image."""
        return self.max_shapes * self.proposals_per_shape


def _require(ok: bool, name: str, value: object, what: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {what}, got {value!r}")


# ----------------------------------------------------------------------------- data


def shape_mask(kind: int, box: np.ndarray, image_size: int) -> np.ndarray:
    """(image_size, image_size) bool mask of the pixels whose centres fall inside the shape.

    kind indexes SHAPES; box is [x1, y1, x2, y2] in pixels (pixel (i, j) has its centre at
    (j + 0.5, i + 0.5)) and is the shape's bounding box: squares fill it, disks are the
    inscribed ellipse, triangles point up with their base on the bottom edge, crosses are
    two bars a third of the box thick.
    """
    if not 0 <= kind < len(SHAPES):
        raise ValueError(f"kind must index SHAPES {SHAPES}, got {kind!r}")
    if not (box[2] > box[0] and box[3] > box[1]):
        raise ValueError(f"box must have positive width and height, got {box.tolist()}")
    centres = np.arange(image_size) + 0.5
    u = (centres[None, :] - box[0]) / (box[2] - box[0])  # 0..1 across the box
    v = (centres[:, None] - box[1]) / (box[3] - box[1])
    inside = (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
    if SHAPES[kind] == "square":
        return inside
    if SHAPES[kind] == "disk":
        return (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25
    if SHAPES[kind] == "triangle":
        return inside & (np.abs(u - 0.5) <= v / 2)
    return inside & ((np.abs(u - 0.5) <= 1 / 6) | (np.abs(v - 0.5) <= 1 / 6))


def _overlaps(box: np.ndarray, others: list[np.ndarray]) -> bool:
    return any(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3] for o in others)


def sample_scene(rng: np.random.Generator, config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image with non-overlapping shapes.

    Returns image (H, W, 3) float32 in [0, 1], boxes (M, 4) float32 and labels (M,) int32
    with 1 <= M <= max_shapes (a shape that finds no free spot in 20 tries is dropped;
    the first one always fits).
    """
    size = config.image_size
    image = np.clip(rng.normal(0.5, 0.2, (size, size, 3)), 0, 1)
    boxes: list[np.ndarray] = []
    labels: list[int] = []
    for _ in range(rng.integers(1, config.max_shapes + 1)):
        for _ in range(20):
            w, h = rng.integers(config.min_side, config.max_side + 1, 2)
            x1, y1 = rng.integers(0, size - w + 1), rng.integers(0, size - h + 1)
            box = np.array([x1, y1, x1 + w, y1 + h], np.float64)
            if not _overlaps(box, boxes):
                kind = int(rng.integers(len(SHAPES)))
                image[shape_mask(kind, box, size)] = rng.uniform(0, 1, 3)
                boxes.append(box)
                labels.append(kind)
                break
    return image.astype(np.float32), np.stack(boxes).astype(np.float32), np.array(labels, np.int32)


def jitter_boxes(rng: np.random.Generator, boxes: np.ndarray, jitter: float, image_size: int) -> np.ndarray:
    """(M, 4) proposals: each box's centre moved by N(0, jitter * side), each side scaled by exp(N(0, jitter)).

    Proposals are clipped to the image and keep a side of at least 2 pixels.
    """
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx = boxes[:, 0] + w / 2 + rng.normal(0, jitter, len(boxes)) * w
    cy = boxes[:, 1] + h / 2 + rng.normal(0, jitter, len(boxes)) * h
    w = w * np.exp(rng.normal(0, jitter, len(boxes)))
    h = h * np.exp(rng.normal(0, jitter, len(boxes)))
    x1, y1 = np.clip(cx - w / 2, 0, image_size - 2), np.clip(cy - h / 2, 0, image_size - 2)
    x2, y2 = np.clip(cx + w / 2, x1 + 2, image_size), np.clip(cy + h / 2, y1 + 2, image_size)
    return np.stack([x1, y1, x2, y2], 1).astype(np.float32)


def make_batch(rng: np.random.Generator, config: TrainConfig, n_images: int) -> dict[str, np.ndarray]:
    """A batch with per-image padded proposals, their matched ground truth and a validity mask.

    Returns images (N, H, W, 3) float32, proposals and gt_boxes (N, R, 4) float32, labels
    (N, R) int32 and valid (N, R) bool.  Padding rows hold the whole-image box (finite, with
    positive size, so pooling and delta targets stay finite), label 0 and valid False.
    """
    _require(n_images >= 1, "n_images", n_images, ">= 1")
    r, size = config.rois_per_image, config.image_size
    images = np.empty((n_images, size, size, 3), np.float32)
    proposals = np.tile(np.array([0, 0, size, size], np.float32), (n_images, r, 1))
    gt_boxes = proposals.copy()
    labels = np.zeros((n_images, r), np.int32)
    valid = np.zeros((n_images, r), bool)
    for i in range(n_images):
        images[i], boxes, kinds = sample_scene(rng, config)
        boxes = np.repeat(boxes, config.proposals_per_shape, 0)
        m = len(boxes)
        proposals[i, :m] = jitter_boxes(rng, boxes, config.jitter, size)
        gt_boxes[i, :m] = boxes
        labels[i, :m] = np.repeat(kinds, config.proposals_per_shape)
        valid[i, :m] = True
    return {"images": images, "proposals": proposals, "gt_boxes": gt_boxes, "labels": labels, "valid": valid}


# ----------------------------------------------------------------------------- boxes


def _centre_size(boxes: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    w, h = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + w / 2, boxes[..., 1] + h / 2, w, h


def encode_deltas(proposals: jax.Array, targets: jax.Array) -> jax.Array:
    """(..., 4) weighted Faster R-CNN deltas taking proposals to targets (both (..., 4) [x1, y1, x2, y2]).

    (dx, dy, dw, dh) = (10 (tx - px) / pw, 10 (ty - py) / ph, 5 log(tw / pw), 5 log(th / ph))
    with centres (px, py), (tx, ty) and sides pw, ph, tw, th; boxes must have positive sides.
    """
    px, py, pw, ph = _centre_size(proposals)
    tx, ty, tw, th = _centre_size(targets)
    wx, wy, ww, wh = DELTA_WEIGHTS
    return jnp.stack([wx * (tx - px) / pw, wy * (ty - py) / ph, ww * jnp.log(tw / pw), wh * jnp.log(th / ph)], -1)


def decode_deltas(proposals: jax.Array, deltas: jax.Array) -> jax.Array:
    """(..., 4) boxes from proposals (..., 4) and deltas (..., 4): the inverse of :func:`encode_deltas`.

    dw and dh (after dividing by their weights) are clipped to log(1000 / 16), as Detectron2
    does, so an untrained head cannot overflow exp.
    """
    px, py, pw, ph = _centre_size(proposals)
    wx, wy, ww, wh = DELTA_WEIGHTS
    clip = float(np.log(1000.0 / 16))
    cx, cy = px + deltas[..., 0] / wx * pw, py + deltas[..., 1] / wy * ph
    w = pw * jnp.exp(jnp.minimum(deltas[..., 2] / ww, clip))
    h = ph * jnp.exp(jnp.minimum(deltas[..., 3] / wh, clip))
    return jnp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def box_iou(a: jax.Array, b: jax.Array) -> jax.Array:
    """(...,) intersection over union of paired boxes a, b (..., 4); 0 where the union is empty."""
    iw = jnp.clip(jnp.minimum(a[..., 2], b[..., 2]) - jnp.maximum(a[..., 0], b[..., 0]), 0)
    ih = jnp.clip(jnp.minimum(a[..., 3], b[..., 3]) - jnp.maximum(a[..., 1], b[..., 1]), 0)
    inter = iw * ih
    area_a = jnp.clip(a[..., 2] - a[..., 0], 0) * jnp.clip(a[..., 3] - a[..., 1], 0)
    area_b = jnp.clip(b[..., 2] - b[..., 0], 0) * jnp.clip(b[..., 3] - b[..., 1], 0)
    union = area_a + area_b - inter
    return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1), 0)


# ----------------------------------------------------------------------------- model


class Backbone(nn.Module):
    """Images (N, H, W, 3) -> pyramid [P2 (N, H/4, W/4, C), P3 (N, H/8, W/8, C)], FPN-style."""

    channels: int

    @nn.compact
    def __call__(self, images: jax.Array) -> list[jax.Array]:
        x = nn.relu(nn.Conv(16, (3, 3), strides=2)(images - 0.5))
        c2 = nn.relu(nn.Conv(32, (3, 3), strides=2)(x))  # stride 4
        c3 = nn.relu(nn.Conv(64, (3, 3), strides=2)(c2))  # stride 8
        p3 = nn.Conv(self.channels, (1, 1))(c3)
        n, h, w, c = p3.shape
        p2 = nn.Conv(self.channels, (1, 1))(c2) + jax.image.resize(p3, (n, 2 * h, 2 * w, c), "nearest")
        return [nn.Conv(self.channels, (3, 3))(p2), nn.Conv(self.channels, (3, 3))(p3)]


class BoxHeadDetector(nn.Module):
    """Backbone, multiscale RoIAlign of the proposals, and a two-layer MLP head.

    __call__(images (N, H, W, 3) float32, proposals (N, R, 4) float32 in image pixels) returns
    class logits (N, R, len(SHAPES)) and class-agnostic weighted deltas (N, R, 4), float32.
    Padding proposals are pooled like any other; the caller masks them out.
    """

    channels: int
    pool_size: int

    @nn.compact
    def __call__(self, images: jax.Array, proposals: jax.Array) -> tuple[jax.Array, jax.Array]:
        levels = Backbone(self.channels)(images)
        pooled = jr.multiscale_roi_align(
            levels,
            proposals,
            self.pool_size,
            spatial_scales=[1 / s for s in STRIDES],
            sampling_ratio=2,
            aligned=True,
            canonical_size=CANONICAL_SIZE,
            canonical_level=CANONICAL_LEVEL,
        )  # (N, R, pool, pool, C)
        x = pooled.reshape(pooled.shape[:2] + (-1,))
        x = nn.relu(nn.Dense(128)(x))
        x = nn.relu(nn.Dense(128)(x))
        return nn.Dense(len(SHAPES))(x), nn.Dense(4)(x)


# ----------------------------------------------------------------------------- training


def batch_metrics(model: BoxHeadDetector, params: Params, batch: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Loss and metrics of a batch, averaged over its valid proposals (float32 scalars).

    loss = cross-entropy + smooth-L1 (beta 1) of the weighted deltas summed over the 4 coordinates.
    Metrics: loss, cls_loss, box_loss, accuracy, iou_proposals (IoU of proposals with their
    ground truth) and iou_refined (IoU of the decoded boxes with it).
    """
    logits, deltas = model.apply({"params": params}, batch["images"], batch["proposals"])
    valid = batch["valid"].astype(jnp.float32)
    count = jnp.maximum(valid.sum(), 1.0)

    def mean(x: jax.Array) -> jax.Array:
        return (x * valid).sum() / count

    cls_loss = mean(optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"]))
    targets = encode_deltas(batch["proposals"], batch["gt_boxes"])
    box_loss = mean(optax.huber_loss(deltas, targets, delta=1.0).sum(-1))
    refined = decode_deltas(batch["proposals"], deltas)
    metrics = {
        "loss": cls_loss + box_loss,
        "cls_loss": cls_loss,
        "box_loss": box_loss,
        "accuracy": mean((logits.argmax(-1) == batch["labels"]).astype(jnp.float32)),
        "iou_proposals": mean(box_iou(batch["proposals"], batch["gt_boxes"])),
        "iou_refined": mean(box_iou(refined, batch["gt_boxes"])),
    }
    return metrics["loss"], metrics


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Adam with a cosine-decayed learning rate over config.steps."""
    return optax.adam(optax.cosine_decay_schedule(config.learning_rate, config.steps))


def evaluate(
    eval_step: Callable[[Params, Batch], dict[str, jax.Array]],
    params: Params,
    config: TrainConfig,
    rng: np.random.Generator,
    n_images: int,
) -> dict[str, float]:
    """Metrics of eval_step (batch_metrics' dict) over n_images (>= 1) images drawn from rng.

    Images come in batches of config.batch_size; each batch's metrics are weighted by its
    number of valid proposals, so the result is the mean over all valid proposals.
    """
    _require(n_images >= 1, "n_images", n_images, ">= 1")
    totals: dict[str, float] = {}
    count = 0.0
    for start in range(0, n_images, config.batch_size):
        batch = make_batch(rng, config, min(config.batch_size, n_images - start))
        weight = float(batch["valid"].sum())
        for name, value in eval_step(params, batch).items():
            totals[name] = totals.get(name, 0.0) + float(value) * weight
        count += weight
    return {name: total / count for name, total in totals.items()}


def train(config: TrainConfig, *, verbose: bool = True) -> dict[str, Any]:
    """Train the detector head and evaluate it on held-out images.

    Returns {"history": one dict per step (step, loss, accuracy, ...: the training batch's
    metrics as floats), "eval": held-out metrics (empty when eval_images is 0),
    "train_seconds": wall time of initialisation, compilation and the training loop,
    "eval_seconds", "params"}.  Deterministic given config.seed on a given backend.
    """
    start = time.perf_counter()
    model = BoxHeadDetector(config.channels, config.pool_size)
    train_rng = np.random.default_rng([config.seed, 0])
    eval_rng = np.random.default_rng([config.seed, 1])
    first = make_batch(train_rng, config, config.batch_size)
    # One compiled program (eager init compiles each initializer on its own).  Partitionable
    # threefry, the default, made this compile about 3x slower (10 s vs 3.5 s on a loaded 2-core CPU);
    # it only matters for sharded random numbers.
    with jax.threefry_partitionable(False):
        params = jax.jit(model.init)(jax.random.key(config.seed), first["images"], first["proposals"])["params"]
    optimizer = make_optimizer(config)
    opt_state = optimizer.init(params)

    @jax.jit
    def train_step(params, opt_state, batch):
        grads, metrics = jax.grad(lambda p: batch_metrics(model, p, batch), has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, metrics

    eval_step = jax.jit(lambda params, batch: batch_metrics(model, params, batch)[1])

    history = []
    batch = first
    for step in range(1, config.steps + 1):
        params, opt_state, metrics = train_step(params, opt_state, batch)
        # Draw the next batch while the step runs (dispatch is asynchronous).
        batch = make_batch(train_rng, config, config.batch_size)
        history.append({"step": step, **{k: float(v) for k, v in metrics.items()}})
        if verbose and config.log_every and (step % config.log_every == 0 or step == 1):
            h = history[-1]
            print(
                f"step {step:5d}  loss {h['loss']:.4f} (cls {h['cls_loss']:.4f}, box {h['box_loss']:.4f})  "
                f"accuracy {h['accuracy']:.3f}  IoU {h['iou_proposals']:.3f} -> {h['iou_refined']:.3f}  "
                f"{time.perf_counter() - start:6.1f} s",
                flush=True,
            )
    train_seconds = time.perf_counter() - start

    start = time.perf_counter()
    held_out = evaluate(eval_step, params, config, eval_rng, config.eval_images) if config.eval_images else {}
    return {
        "history": history,
        "eval": held_out,
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - start,
        "params": params,
    }


def parse_config(argv: Sequence[str] | None) -> TrainConfig:
    """TrainConfig from command-line flags (one flag per field, e.g. --batch-size 16)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(TrainConfig):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default)
    return TrainConfig(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse flags, train, print progress and the held-out evaluation; returns train()'s result."""
    config = parse_config(argv)
    print(f"jax {jax.__version__} on {jax.default_backend()}; {config}", flush=True)
    result = train(config)
    held_out = result["eval"]
    if held_out:
        print(
            f"held-out ({config.eval_images} images): accuracy {held_out['accuracy']:.3f} "
            f"(chance {1 / len(SHAPES):.2f}), loss {held_out['loss']:.4f}, "
            f"IoU proposals {held_out['iou_proposals']:.3f} -> refined {held_out['iou_refined']:.3f}"
        )
    print(
        f"training {result['train_seconds']:.1f} s (initialisation, compilation and steps), "
        f"evaluation {result['eval_seconds']:.1f} s"
    )
    return result


if __name__ == "__main__":
    main()
