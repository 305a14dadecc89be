"""Run-time checked versions of the ops, for values that jit cannot check eagerly.

Under ``jax.jit`` the plain ops cannot raise on data: an out-of-range batch index
yields zeros and a non-finite box yields NaN (see the README's reliability section).
These wrappers compile the op with :mod:`jax.experimental.checkify` and raise
``checkify.JaxRuntimeError`` naming the bad value instead.  Call them from Python
(they jit-compile internally); inside your own jit, use ``checkify.checkify`` on a
function that calls them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.experimental import checkify

from jax_roialign import canonical, ops
from jax_roialign.xla import guards


def _check_boxes(boxes: canonical.Boxes, n_images: int) -> None:
    idx = boxes.batch_indices
    in_range, _ = guards.images_in_range(idx, n_images)
    first_bad = jnp.argmin(in_range)
    checkify.check(
        jnp.all(in_range),
        f"batch index {{bad}} (box {{box}}) is outside [0, {n_images})",
        bad=idx[first_bad] if idx.size else jnp.int32(0),
        box=first_bad,
    )
    finite = jnp.all(jnp.isfinite(boxes.coords), axis=-1)
    first_nonfinite = jnp.argmin(finite)
    checkify.check(jnp.all(finite), "box {box} has a non-finite coordinate", box=first_nonfinite)


def _checked_version(op: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """op with a run-time check of batch indices and box coordinates (same signature)."""

    @functools.wraps(op)
    def checked_op(
        features: jax.Array,
        boxes: jax.Array,
        output_size: int | tuple[int, int],
        *,
        batch_indices: jax.Array | None = None,
        data_format: str = "NHWC",
        **kwargs,
    ) -> jax.Array:
        def run(features, boxes, batch_indices):
            x = canonical.canonical_features(features, data_format)
            _check_boxes(canonical.canonical_boxes(boxes, batch_indices, x.shape[0]), x.shape[0])
            return op(features, boxes, output_size, batch_indices=batch_indices, data_format=data_format, **kwargs)

        err, out = checkify.checkify(jax.jit(run))(features, boxes, batch_indices)
        err.throw()
        return out

    checked_op.__doc__ = f"jax_roialign.{op.__name__}, raising on out-of-range batch indices and non-finite boxes."
    return checked_op


roi_align = _checked_version(ops.roi_align)
roi_pool = _checked_version(ops.roi_pool)
