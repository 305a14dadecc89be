"""tf.image.crop_and_resize: normalized [y1, x1, y2, x2] boxes, NHWC, float32 results."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jax_roialign import canonical, ops
from jax_roialign.conventions import check_choice, output_size_pair

METHODS: tuple[str, ...] = ("bilinear", "nearest")
# The image dtypes tf.image.crop_and_resize accepts (TF 2.21); bfloat16, which TF rejects, is accepted here too.
IMAGE_DTYPES: tuple[str, ...] = ("uint8", "uint16", "int8", "int16", "int32", "int64", "float16", "float32", "float64")


def _float32_image(image: jax.Array) -> jax.Array:
    """image as float32, each pixel converted as TF's kernel does (static_cast<float>), or a TypeError.

    Integer images are converted before anything else, so int64 values keep their
    float32 rounding without 64-bit JAX types (NumPy converts NumPy arrays).
    """
    dtype = jnp.result_type(image) if isinstance(image, jax.Array) else np.asarray(image).dtype
    if dtype.name not in IMAGE_DTYPES + ("bfloat16",):
        raise TypeError(
            f"image must have one of tf.image.crop_and_resize's dtypes {IMAGE_DTYPES} (or bfloat16), got dtype {dtype}"
        )
    if isinstance(image, jax.Array):
        return image.astype(jnp.float32) if jnp.issubdtype(dtype, jnp.integer) else image
    image = np.asarray(image)
    return image.astype(np.float32) if np.issubdtype(dtype, np.integer) else image


def crop_and_resize(
    image: jax.Array,
    boxes: jax.Array,
    box_indices: jax.Array,
    crop_size: tuple[int, int],
    method: str = "bilinear",
    extrapolation_value: float = 0.0,
) -> jax.Array:
    """TensorFlow's crop_and_resize (``docs/conventions.md`` section 4).

    image (N, H, W, C) of a dtype TF accepts: uint8, uint16, int8, int16, int32, int64
    (each pixel converted to float32 as TF does: int32 / int64 values beyond 2**24
    round), float16, float32, float64; also bfloat16, which TF rejects; any other dtype
    raises TypeError.  boxes (K, 4) normalized [y1, x1, y2, x2]
    (y1 > y2 flips); box_indices (K,) ints in [0, N); crop_size (crop_h, crop_w).
    Sample i of a crop sits at ``y1 * (H-1) + i * (y2 - y1) * (H-1) / (crop_h - 1)``
    (the box centre when crop_h == 1); samples outside the image take
    extrapolation_value.  Returns (K, crop_h, crop_w, C) float32, like TensorFlow,
    computed in float32.  Differentiable in image and boxes (bilinear), matching
    TensorFlow's gradients (an integer image has none, in TF too; the boxes' gradient
    is there, except for "nearest", whose output is piecewise constant in the boxes:
    0 here, TF's bilinear formula there).
    """
    check_choice(method, "method", METHODS)
    crop = output_size_pair(crop_size, name="crop_size")
    x = canonical.canonical_features(_float32_image(image), "NHWC", name="image")
    boxes = jnp.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (K, 4) [y1, x1, y2, x2], got shape {boxes.shape}")
    if not jnp.issubdtype(boxes.dtype, jnp.floating):
        raise TypeError(f"boxes must be floating point, got dtype {boxes.dtype}")
    idx = canonical.check_batch_indices(box_indices, boxes.shape[0], x.shape[0], name="box_indices")
    return ops.crop_and_resize_canonical(x, boxes, idx, crop, method, float(extrapolation_value))
