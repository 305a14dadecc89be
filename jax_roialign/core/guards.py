"""Containment under jit: bad boxes isolated, memory bounded for any number of boxes."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jax_roialign.core.bins import compute_dtype


def isolate_nonfinite_boxes(boxes: jax.Array, batch_indices: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(boxes, batch_indices, finite): boxes with a NaN or infinite coordinate are neutralized.

    Such a box is replaced by (0, 0, 0, 0) and given batch index -1, so it reads no
    image and sends no gradient anywhere (its weights stay finite); callers mark its
    output NaN with :func:`mark_nonfinite`.  Other boxes are untouched.
    """
    finite = jnp.all(jnp.isfinite(boxes), axis=-1)
    boxes = jnp.where(finite[:, None], boxes, 0.0)
    return boxes, jnp.where(finite, batch_indices, -1), finite


def images_in_range(batch_indices: jax.Array, n_images: int) -> tuple[jax.Array, jax.Array]:
    """(in_range, image): whether each batch index lies in [0, n_images), and the index
    itself where it does, 0 where not (a safe image to read; callers zero those boxes'
    weights or outputs, so a bad index reads nothing of any image)."""
    in_range = (batch_indices >= 0) & (batch_indices < n_images)
    return in_range, jnp.where(in_range, batch_indices, 0)


def mark_nonfinite(out: jax.Array, finite: jax.Array) -> jax.Array:
    """out with the rows of non-finite boxes set to NaN (the documented value)."""
    mask = finite.reshape(finite.shape + (1,) * (out.ndim - 1))
    return jnp.where(mask, out, jnp.asarray(jnp.nan, out.dtype))


def guarded_pool(
    pool: Callable[[jax.Array, jax.Array, jax.Array, jax.Array], jax.Array],
    features: jax.Array,
    boxes: jax.Array,
    batch_indices: jax.Array,
    mark: Callable[[jax.Array, jax.Array], jax.Array] = mark_nonfinite,
) -> jax.Array:
    """``pool(x, boxes, image, in_range)`` of canonical inputs with the bad ones contained, in features' dtype.

    ``pool`` sees the features and boxes in the compute dtype, non-finite boxes
    neutralized (:func:`isolate_nonfinite_boxes`) and every batch index in [0, N) with
    ``in_range`` False where it was not (:func:`images_in_range`); its result is marked
    NaN for the non-finite boxes by ``mark`` (default :func:`mark_nonfinite`).
    """
    cdt = compute_dtype(features.dtype)
    x = features.astype(cdt)
    boxes, batch_indices, finite = isolate_nonfinite_boxes(boxes.astype(cdt), batch_indices)
    in_range, image = images_in_range(batch_indices, x.shape[0])
    return mark(pool(x, boxes, image, in_range), finite).astype(features.dtype)


# Working set that one chunk of boxes may use on the XLA paths (bytes).  Measured on the
# 2-core CPU (docs/performance.md): 128 MiB keeps many-boxes' forward+backward peak at 1.8x
# its floor (512 MiB: 4.1x) but splits fpn-p3 into 2 chunks, whose loop runs 2.6x slower
# than one fused pass (58 ms against 22 ms forward).
CHUNK_BYTES = 1 << 27


def map_box_chunks(
    fn: Callable[[jax.Array, jax.Array], jax.Array],
    boxes: jax.Array,
    batch_indices: jax.Array,
    bytes_per_box: int,
) -> jax.Array:
    """fn(boxes, batch_indices) -> (K, ...), run over chunks of boxes when K is large.

    Keeps the working set near CHUNK_BYTES whatever K is, forward and backward, with
    a sequential lax.map over rematerialized chunks; small K calls fn once.  Padding boxes
    get batch index -1 and are dropped from the result.
    """
    k = boxes.shape[0]
    chunk = max(1, CHUNK_BYTES // max(bytes_per_box, 1))
    if k <= chunk:
        return fn(boxes, batch_indices)
    n_chunks = -(-k // chunk)
    pad = n_chunks * chunk - k
    boxes = jnp.pad(boxes, ((0, pad), (0, 0))).reshape(n_chunks, chunk, boxes.shape[1])
    batch_indices = jnp.pad(batch_indices, (0, pad), constant_values=-1).reshape(n_chunks, chunk)
    # Rematerialized: the backward pass recomputes a chunk instead of storing every
    # chunk's intermediates, so gradients stay within the same working set.
    chunk_fn = jax.checkpoint(fn)
    out = jax.lax.map(lambda args: chunk_fn(*args), (boxes, batch_indices))
    return out.reshape((n_chunks * chunk,) + out.shape[2:])[:k]
