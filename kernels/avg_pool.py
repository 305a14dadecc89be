"""avg RoIAlign on the kernels: a windowed separable forward pass and an owner-computes backward pass.

avg is separable, ``out[k] = Wy[k] @ X[b_k] @ Wx[k]^T`` per channel, with the per-axis
weights of ``geometry.avg_geometry``.  The kernels exist once per backend
(``avg_pool_triton``, ``avg_pool_mosaic``); :func:`forward_reference` and
:func:`backward_reference` are what both compute, in plain jax.numpy.  The kernels
accumulate in the dtype of the (already converted) features: float32, or float64 for
float64 features.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .config import BlockSizes
from .geometry import AvgGeometry, ImageRanges
from .target import Target

FORWARD_NAME = "roi_align_avg_forward"
BACKWARD_NAME = "roi_align_avg_features_backward"


def _backend(target: Target):
    if target.backend == "mosaic":
        from . import avg_pool_mosaic

        return avg_pool_mosaic
    from . import avg_pool_triton

    return avg_pool_triton


def forward(
    x: jax.Array,
    image: jax.Array,
    geometry: AvgGeometry,
    output_size: tuple[int, int],
    block_sizes: BlockSizes,
    target: Target,
) -> jax.Array:
    """(K, out_h, out_w, C) avg RoIAlign of features x (N, H, W, C) in x's dtype (the accumulation dtype).

    ``image`` (K,) int32 holds the batch indices.  Computes :func:`forward_reference`.
    """
    return _backend(target).forward(x, image, geometry, output_size, block_sizes, target)


def backward(
    g: jax.Array,
    ranges: ImageRanges,
    geometry: AvgGeometry,
    features_shape: tuple[int, int, int, int],
    block_sizes: BlockSizes,
    target: Target,
) -> jax.Array:
    """(N, H, W, C) gradient of the features for the output cotangent g (K, out_h, out_w, C).

    Computes :func:`backward_reference`, accumulating in g's dtype: each gradient tile
    has one writer that adds the boxes of its image in ascending box order, output row
    by output row, so the result is bitwise reproducible.
    """
    return _backend(target).backward(g, ranges, geometry, features_shape, block_sizes, target)


def forward_reference(x: jax.Array, image: jax.Array, geometry: AvgGeometry) -> jax.Array:
    """What :func:`forward` computes, as one dense contraction: ``Wy[k] @ X[image_k] @ Wx[k]^T``.

    A box whose image lies outside [0, N) has zero weights (``geometry.avg_geometry``).
    """
    pick = (image[:, None] == jnp.arange(x.shape[0])).astype(x.dtype)
    return jnp.einsum("kph,kn,nhwc,kqw->kpqc", geometry.wy, pick, x, geometry.wx, precision=jax.lax.Precision.HIGHEST)


def backward_reference(
    g: jax.Array, image: jax.Array, geometry: AvgGeometry, features_shape: tuple[int, int, int, int]
) -> jax.Array:
    """What :func:`backward` computes: the transpose of :func:`forward_reference` applied to g."""
    zeros = jax.ShapeDtypeStruct(features_shape, g.dtype)
    (dx,) = jax.linear_transpose(lambda x: forward_reference(x, image, geometry), zeros)(g)
    return dx
