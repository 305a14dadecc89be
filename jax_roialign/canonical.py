"""The edge of the library: layouts and box formats in, one canonical form out.

Canonical form: features (N, H, W, C), boxes (K, 4) [x1, y1, x2, y2] (rotated boxes:
(K, 5) [cx, cy, w, h, angle]) with batch_indices (K,) int32.  Every public function calls :func:`canonical_inputs` (or
its two halves, :func:`canonical_features` and :func:`canonical_boxes`) once and hands
the result to an implementation; :class:`Boxes` knows how to give the output back the
caller's box layout.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jax_roialign.conventions import check_choice

DATA_FORMATS: tuple[str, ...] = ("NHWC", "NCHW")


def concrete_value(x: jax.Array) -> np.ndarray | None:
    """x as a numpy array when its value is known now (not traced), else None."""
    if isinstance(x, jax.core.Tracer):
        return None
    return np.asarray(x)


def canonical_features(features: jax.Array, data_format: str, name: str = "features") -> jax.Array:
    """features as (N, H, W, C); it must be a rank-4 floating array."""
    check_choice(data_format, "data_format", DATA_FORMATS)
    features = jnp.asarray(features)
    if features.ndim != 4:
        layout = "(N, H, W, C)" if data_format == "NHWC" else "(N, C, H, W)"
        raise ValueError(f"{name} must have shape {layout} for {data_format}, got shape {features.shape}")
    if not jnp.issubdtype(features.dtype, jnp.floating):
        raise TypeError(f"{name} must be floating point, got dtype {features.dtype}")
    if data_format == "NCHW":
        features = jnp.transpose(features, (0, 2, 3, 1))
    if 0 in features.shape[1:3]:
        raise ValueError(f"{name} must have a non-empty spatial extent, got shape {features.shape}")
    return features


def output_layout(out: jax.Array, data_format: str) -> jax.Array:
    """(K, h, w, C) results in the caller's data_format ((K, C, h, w) for NCHW)."""
    return jnp.transpose(out, (0, 3, 1, 2)) if data_format == "NCHW" else out


def canonical_images(images: jax.Array, data_format: str, name: str = "x") -> jax.Array:
    """images as (N, H, W, C): a rank-4 floating or integer array with a non-empty spatial extent."""
    check_choice(data_format, "data_format", DATA_FORMATS)
    images = jnp.asarray(images)
    if images.ndim != 4:
        layout = "(N, H, W, C)" if data_format == "NHWC" else "(N, C, H, W)"
        raise ValueError(f"{name} must have shape {layout} for {data_format}, got shape {images.shape}")
    if not (jnp.issubdtype(images.dtype, jnp.floating) or jnp.issubdtype(images.dtype, jnp.integer)):
        raise TypeError(f"{name} must be floating point or integer, got dtype {images.dtype}")
    if data_format == "NCHW":
        images = jnp.transpose(images, (0, 2, 3, 1))
    if 0 in images.shape[1:3]:
        raise ValueError(f"{name} must have a non-empty spatial extent, got shape {images.shape}")
    return images


@dataclasses.dataclass(frozen=True)
class Boxes:
    """Canonical boxes plus what is needed to restore the caller's leading axes."""

    coords: jax.Array  # (K, 4) [x1, y1, x2, y2], or (K, 5) [cx, cy, w, h, angle] for rotated boxes
    batch_indices: jax.Array  # (K,) int32
    leading_shape: tuple[int, ...]  # (K,) or (N, R) for per-image padded boxes

    def restore(self, out: jax.Array) -> jax.Array:
        """Reshape (K, ...) results to the caller's leading box axes."""
        return out.reshape(self.leading_shape + out.shape[1:])


def check_batch_indices(batch_indices: jax.Array, k: int, n_images: int, name: str = "batch_indices") -> jax.Array:
    """(K,) int32 batch indices; checked against [0, N) when their values are known."""
    batch_indices = jnp.asarray(batch_indices)
    if batch_indices.shape != (k,):
        raise ValueError(f"{name} must have shape ({k},) to match the boxes, got shape {batch_indices.shape}")
    if not jnp.issubdtype(batch_indices.dtype, jnp.integer):
        raise TypeError(f"{name} must be integers, got dtype {batch_indices.dtype}")
    values = concrete_value(batch_indices)
    if values is not None and values.size and (values.min() < 0 or values.max() >= n_images):
        bad = values[(values < 0) | (values >= n_images)]
        raise ValueError(f"{name} must lie in [0, {n_images}) (features has {n_images} images), got {bad.tolist()[:8]}")
    return batch_indices.astype(jnp.int32)


def _check_float_boxes(boxes: jax.Array, name: str) -> jax.Array:
    boxes = jnp.asarray(boxes)
    if not jnp.issubdtype(boxes.dtype, jnp.floating):
        raise TypeError(f"{name} must be floating point, got dtype {boxes.dtype}")
    return boxes


def canonical_boxes(
    boxes: jax.Array,
    batch_indices: jax.Array | None,
    n_images: int,
    name: str = "boxes",
    coords: int = 4,
) -> Boxes:
    """Canonical boxes from any accepted form.

    Accepted, for boxes of ``coords`` numbers each (4: [x1, y1, x2, y2]; 5: rotated
    [cx, cy, w, h, angle]): (K, coords) with batch_indices (K,) ints (which may be
    omitted when features holds one image); (K, coords + 1) with the batch index first
    and batch_indices=None, the index column truncated to an integer as torchvision
    does; per-image padded (N, R, coords) with batch_indices=None, results then (N, R, ...).
    """
    boxes = _check_float_boxes(boxes, name)
    shape = boxes.shape
    if not ((boxes.ndim == 2 and shape[1] in (coords, coords + 1)) or (boxes.ndim == 3 and shape[2] == coords)):
        forms = f"(K, {coords}), (K, {coords + 1}) or (N, R, {coords})"
        raise ValueError(f"{name} must have shape {forms}, got shape {shape}")
    if boxes.ndim == 2 and shape[1] == coords:
        if batch_indices is None:
            if n_images != 1:
                raise ValueError(
                    f"batch_indices is required with (K, {coords}) {name} when features has {n_images} images"
                )
            batch_indices = jnp.zeros((shape[0],), jnp.int32)
        idx = check_batch_indices(batch_indices, shape[0], n_images)
        return Boxes(boxes, idx, (shape[0],))
    if batch_indices is not None:
        raise ValueError(
            f"batch_indices must be None with {name} of shape {shape}; it is only for (K, {coords}) {name}"
        )
    if boxes.ndim == 2:  # (K, coords + 1)
        column = boxes[:, 0]
        values = concrete_value(column)
        if values is not None and np.any(values != np.trunc(values)):
            raise ValueError(f"{name}[:, 0] holds batch indices and must be whole numbers, got {values.tolist()[:8]}")
        idx = check_batch_indices(column.astype(jnp.int32), shape[0], n_images, name=f"{name}[:, 0]")
        return Boxes(boxes[:, 1:], idx, (shape[0],))
    if shape[0] != n_images:
        raise ValueError(f"per-image {name} of shape {shape} must have one row per image (features has {n_images})")
    idx = jnp.repeat(jnp.arange(shape[0], dtype=jnp.int32), shape[1])
    return Boxes(boxes.reshape(-1, coords), idx, shape[:2])


def canonical_inputs(
    features: jax.Array, boxes: jax.Array, batch_indices: jax.Array | None, data_format: str, coords: int = 4
) -> tuple[jax.Array, Boxes]:
    """(features as (N, H, W, C), canonical :class:`Boxes`) of a RoIAlign-style call (boxes of ``coords`` numbers)."""
    x = canonical_features(features, data_format)
    return x, canonical_boxes(boxes, batch_indices, x.shape[0], coords=coords)
