"""tf.image.crop_and_resize in plain jax.numpy (conventions.md section 4).

One sample per output pixel on a corner-aligned grid over normalized boxes; no bin
averaging.  Arithmetic follows TensorFlow's kernel: float32 throughout, neighbours
floor and ceil of the coordinate, ``top + (bottom - top) * y_lerp`` after the same
along x.  Gradients reach the image and the boxes; the box gradient equals
TensorFlow's CropAndResizeGradBoxes because it is the derivative of the same
expressions (zero at out-of-range samples, and zero along an axis whose coordinate
is an integer, where floor == ceil).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax_roialign.core.guards import images_in_range, isolate_nonfinite_boxes, mark_nonfinite
from jax_roialign.core.sampling import crop_axis_coordinates, round_half_away_from_zero


def crop_and_resize(
    image: jax.Array,
    boxes: jax.Array,
    box_indices: jax.Array,
    crop_size: tuple[int, int],
    method: str,
    extrapolation_value: float,
) -> jax.Array:
    """Crops of (N, H, W, C) image at normalized [y1, x1, y2, x2] boxes: (K, ch, cw, C) float32.

    Samples outside [0, H-1] x [0, W-1] and boxes whose index lies outside [0, N) take
    extrapolation_value; a box with a non-finite coordinate yields NaN and passes no
    gradient.  y1 > y2 (or x1 > x2) flips the crop.
    """
    n, h, w, _ = image.shape
    x = image.astype(jnp.float32)
    boxes, box_indices, finite = isolate_nonfinite_boxes(boxes.astype(jnp.float32), box_indices)
    ys, valid_y = crop_axis_coordinates(boxes[:, 0], boxes[:, 2], crop_size[0], h)
    xs, valid_x = crop_axis_coordinates(boxes[:, 1], boxes[:, 3], crop_size[1], w)
    in_range, b = images_in_range(box_indices, n)
    b = b[:, None, None]
    ys, xs = ys[:, :, None], xs[:, None, :]
    valid = (valid_y[:, :, None] & valid_x[:, None, :] & in_range[:, None, None])[..., None]

    if method == "nearest":
        row = _index(round_half_away_from_zero(jax.lax.stop_gradient(ys)), h)
        col = _index(round_half_away_from_zero(jax.lax.stop_gradient(xs)), w)
        value = x[b, row, col]
    else:
        top, bottom = _index(jnp.floor(ys), h), _index(jnp.ceil(ys), h)
        left, right = _index(jnp.floor(xs), w), _index(jnp.ceil(xs), w)
        y_lerp = (ys - jnp.floor(jax.lax.stop_gradient(ys)))[..., None]
        x_lerp = (xs - jnp.floor(jax.lax.stop_gradient(xs)))[..., None]
        upper = x[b, top, left] + (x[b, top, right] - x[b, top, left]) * x_lerp
        lower = x[b, bottom, left] + (x[b, bottom, right] - x[b, bottom, left]) * x_lerp
        value = upper + (lower - upper) * y_lerp
    return mark_nonfinite(jnp.where(valid, value, jnp.asarray(extrapolation_value, jnp.float32)), finite)


def _index(coord: jax.Array, length: int) -> jax.Array:
    """Integer index of an integral coordinate, clamped so masked samples read in bounds."""
    return jnp.clip(jax.lax.stop_gradient(coord), 0, length - 1).astype(jnp.int32)
