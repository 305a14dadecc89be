"""tf.image.crop_and_resize: normalized [y1, x1, y2, x2] boxes, NHWC, float32 results."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax_roialign import canonical, ops
from jax_roialign.conventions import check_choice, output_size_pair

METHODS: tuple[str, ...] = ("bilinear", "nearest")


def crop_and_resize(
    image: jax.Array,
    boxes: jax.Array,
    box_indices: jax.Array,
    crop_size: tuple[int, int],
    method: str = "bilinear",
    extrapolation_value: float = 0.0,
) -> jax.Array:
    """TensorFlow's crop_and_resize (``docs/conventions.md`` section 4).

    image (N, H, W, C) of any float dtype; boxes (K, 4) normalized [y1, x1, y2, x2]
    (y1 > y2 flips); box_indices (K,) ints in [0, N); crop_size (crop_h, crop_w).
    Sample i of a crop sits at ``y1 * (H-1) + i * (y2 - y1) * (H-1) / (crop_h - 1)``
    (the box centre when crop_h == 1); samples outside the image take
    extrapolation_value.  Returns (K, crop_h, crop_w, C) float32, like TensorFlow,
    computed in float32.  Differentiable in image and boxes (bilinear), matching
    TensorFlow's gradients.
    """
    check_choice(method, "method", METHODS)
    crop = output_size_pair(crop_size, name="crop_size")
    x = canonical.canonical_features(image, "NHWC", name="image")
    boxes = jnp.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (K, 4) [y1, x1, y2, x2], got shape {boxes.shape}")
    if not jnp.issubdtype(boxes.dtype, jnp.floating):
        raise TypeError(f"boxes must be floating point, got dtype {boxes.dtype}")
    idx = canonical.check_batch_indices(box_indices, boxes.shape[0], x.shape[0], name="box_indices")
    return ops.crop_and_resize_canonical(x, boxes, idx, crop, method, float(extrapolation_value))
