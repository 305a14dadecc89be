"""Run-time checked versions of the ops, for values that jit cannot check eagerly.

Under ``jax.jit`` the plain ops cannot raise on data: an out-of-range batch index
yields zeros and a non-finite box yields NaN (see the README's reliability section).
These versions check them with :mod:`jax.experimental.checkify`:

- called from Python with concrete arrays, they compile the op with its checks and
  raise ``checkify.JaxRuntimeError`` naming the bad value;
- called inside a transformation (``jit``, ``grad``, ``vmap``, ...: traced inputs),
  they add ``checkify.check`` calls to the traced function, which the caller
  functionalizes with ``checkify.checkify`` (as for any checkify check); every
  transformation that checkify supports then applies.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.experimental import checkify

from jax_roialign import canonical, ops
from jax_roialign.conventions import RoIAlignSpec, check_spatial_scale, output_size_pair
from jax_roialign.core import guards


def check_boxes(boxes: canonical.Boxes, n_images: int) -> None:
    """checkify checks: every batch index in [0, n_images), every coordinate finite."""
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


def _run_checked(
    canonical_op: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
    features: jax.Array,
    boxes: jax.Array,
    batch_indices: jax.Array | None,
    data_format: str,
) -> jax.Array:
    """canonical_op on the canonical inputs, after checking them, compiled with checkify."""

    def run(features, boxes, batch_indices):
        x, b = canonical.canonical_inputs(features, boxes, batch_indices, data_format)
        check_boxes(b, x.shape[0])
        return b.restore(canonical.output_layout(canonical_op(x, b.coords, b.batch_indices), data_format))

    if any(isinstance(a, jax.core.Tracer) for a in (features, boxes, batch_indices)):
        return run(features, boxes, batch_indices)
    err, out = checkify.checkify(jax.jit(run))(features, boxes, batch_indices)
    err.throw()
    return out


def roi_align(
    features: jax.Array,
    boxes: jax.Array,
    output_size: int | tuple[int, int],
    *,
    batch_indices: jax.Array | None = None,
    spatial_scale: float = 1.0,
    sampling_ratio: int = 0,
    aligned: bool = True,
    mode: str = "avg",
    data_format: str = "NHWC",
    impl: str | None = None,
) -> jax.Array:
    """jax_roialign.roi_align, raising on out-of-range batch indices and non-finite boxes."""
    spec = RoIAlignSpec(output_size_pair(output_size), spatial_scale, sampling_ratio, aligned, mode)
    op = functools.partial(ops.roi_align_canonical, spec=spec, impl=ops.check_impl(impl))
    return _run_checked(op, features, boxes, batch_indices, data_format)


def roi_pool(
    features: jax.Array,
    boxes: jax.Array,
    output_size: int | tuple[int, int],
    *,
    batch_indices: jax.Array | None = None,
    spatial_scale: float = 1.0,
    data_format: str = "NHWC",
) -> jax.Array:
    """jax_roialign.roi_pool, raising on out-of-range batch indices and non-finite boxes."""
    op = functools.partial(
        ops.roi_pool_canonical,
        output_size=output_size_pair(output_size),
        spatial_scale=check_spatial_scale(spatial_scale),
    )
    return _run_checked(op, features, boxes, batch_indices, data_format)
