"""TensorFlow: tf.image.crop_and_resize (normalized [y1, x1, y2, x2] boxes, NHWC, float32 results),
tf.image.resize (TF 2) and the TF 1 resize kernels."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jax_roialign import canonical, ops
from jax_roialign.conventions import check_bool, check_choice, output_size_pair
from jax_roialign.core import resize as tables

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


RESIZE_METHODS: tuple[str, ...] = (
    "bilinear",
    "nearest",
    "bicubic",
    "area",
    "lanczos3",
    "lanczos5",
    "gaussian",
    "mitchellcubic",
)
RESIZE_V1_METHODS: tuple[str, ...] = ("bilinear", "nearest", "bicubic", "area")


def _batched_images(images: jax.Array) -> tuple[jax.Array, bool]:
    """(N, H, W, C) images and whether a batch axis was added to a 3-D (H, W, C) input."""
    images = jnp.asarray(images)
    if images.ndim == 3:
        return canonical.canonical_images(images[None], "NHWC", name="images"), True
    return canonical.canonical_images(images, "NHWC", name="images"), False


def resize(
    images: jax.Array,
    size: tuple[int, int],
    method: str = "bilinear",
    preserve_aspect_ratio: bool = False,
    antialias: bool = False,
) -> jax.Array:
    """TensorFlow 2's ``tf.image.resize`` (``docs/conventions.md`` 8.4).

    images (N, H, W, C) or (H, W, C); size (new_height, new_width).  Half-pixel
    centres throughout:

    - "bilinear" / "bicubic" without antialias: the resize_bilinear / resize_bicubic
      kernels (bicubic: Keys a = -0.5 from TF's 1024-entry table, taps outside the image
      dropped and the rest renormalized);
    - with antialias, and "lanczos3", "lanczos5", "gaussian", "mitchellcubic" always:
      ScaleAndTranslate (the kernel stretched by in / out when downsampling with antialias);
    - "nearest": ``floor((o + 0.5) in / out)``, the dtype kept (antialias ignored);
    - "area": resize_area, the exact cell average (antialias ignored).

    preserve_aspect_ratio scales both sides by the smaller ratio, rounding half to even.
    Returns float32 (nearest: images' dtype), like TensorFlow; computed in float32.
    Differentiable in images (TensorFlow has no gradient for "area").
    """
    check_choice(method, "method", RESIZE_METHODS)
    x, added = _batched_images(images)
    out = output_size_pair(tuple(size), name="size")
    if check_bool(preserve_aspect_ratio, "preserve_aspect_ratio"):
        out = tables.tf_preserve_aspect_ratio(x.shape[1:3], out)
    antialias = check_bool(antialias, "antialias")
    (n_h, n_w), (out_h, out_w) = x.shape[1:3], out
    if method in ("nearest", "area") or (method in ("bilinear", "bicubic") and not antialias):
        table_h = tables.tf_axis(n_h, out_h, method, False, method != "area")
        table_w = tables.tf_axis(n_w, out_w, method, False, method != "area")
    else:
        table_h = tables.tf_scale_and_translate_axis(n_h, out_h, method, antialias)
        table_w = tables.tf_scale_and_translate_axis(n_w, out_w, method, antialias)
    y = ops.resize_canonical(x, table_h, table_w, dtype=None if method == "nearest" else "float32")
    return y[0] if added else y


def resize_v1(
    images: jax.Array,
    size: tuple[int, int],
    method: str = "bilinear",
    align_corners: bool = False,
    half_pixel_centers: bool = False,
) -> jax.Array:
    """TensorFlow 1's ``tf.compat.v1.image.resize_{bilinear, nearest_neighbor, bicubic, area}``.

    The defaults are TF 1's: ``align_corners=False, half_pixel_centers=False`` is the
    asymmetric convention (output o samples ``o * in / out``); align_corners maps the
    corner pixels onto each other; half_pixel_centers is TF 2's convention (the two
    flags exclude each other; area takes align_corners only).  Nearest rounds half away
    from zero with align_corners and floors otherwise; bicubic uses a = -0.75 with clamped
    taps unless half_pixel_centers (then Keys a = -0.5, taps outside dropped).  Returns
    float32 (nearest: images' dtype), computed in float32; differentiable in images.
    """
    check_choice(method, "method", RESIZE_V1_METHODS)
    align_corners = check_bool(align_corners, "align_corners")
    half_pixel_centers = check_bool(half_pixel_centers, "half_pixel_centers")
    if align_corners and half_pixel_centers:
        raise ValueError("If half_pixel_centers is True, align_corners must be False.")
    if method == "area" and half_pixel_centers:
        raise ValueError("resize_area has no half_pixel_centers")
    x, added = _batched_images(images)
    (n_h, n_w), (out_h, out_w) = x.shape[1:3], output_size_pair(tuple(size), name="size")
    table_h = tables.tf_axis(n_h, out_h, method, align_corners, half_pixel_centers)
    table_w = tables.tf_axis(n_w, out_w, method, align_corners, half_pixel_centers)
    y = ops.resize_canonical(x, table_h, table_w, dtype=None if method == "nearest" else "float32")
    return y[0] if added else y


def resize_bilinear(images, size, align_corners=False, half_pixel_centers=False) -> jax.Array:
    """tf.compat.v1.image.resize_bilinear (see :func:`resize_v1`)."""
    return resize_v1(images, size, "bilinear", align_corners, half_pixel_centers)


def resize_nearest_neighbor(images, size, align_corners=False, half_pixel_centers=False) -> jax.Array:
    """tf.compat.v1.image.resize_nearest_neighbor (see :func:`resize_v1`)."""
    return resize_v1(images, size, "nearest", align_corners, half_pixel_centers)


def resize_bicubic(images, size, align_corners=False, half_pixel_centers=False) -> jax.Array:
    """tf.compat.v1.image.resize_bicubic (see :func:`resize_v1`)."""
    return resize_v1(images, size, "bicubic", align_corners, half_pixel_centers)


def resize_area(images, size, align_corners=False) -> jax.Array:
    """tf.compat.v1.image.resize_area (see :func:`resize_v1`)."""
    return resize_v1(images, size, "area", align_corners)
