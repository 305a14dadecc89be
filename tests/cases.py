"""Shared test inputs and tolerances: edge-case boxes, random problems, per-dtype bounds."""

from __future__ import annotations

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np

from jax_roialign.tools.problems import edge_boxes_on_map

# Unit roundoff of each dtype: the relative error of one rounding.
EPS = {"float64": 2.0**-53, "float32": 2.0**-24, "bfloat16": 2.0**-8, "float16": 2.0**-11}


def tolerance(dtype: str, n_reduced: int) -> float:
    """Absolute/relative bound for values of order 1 reduced over n_reduced terms.

    Accumulation is float32 (float64 for float64), so a reduction over n terms errs by
    about sqrt(n) roundings of the accumulation dtype (random-walk bound), plus one
    rounding of the result to its own dtype; 16 is the safety factor.
    """
    acc = EPS["float64"] if dtype == "float64" else EPS["float32"]
    return 16 * (acc * math.sqrt(max(n_reduced, 1)) + EPS[dtype])


def edge_boxes(height: int, width: int, scale: float) -> np.ndarray:
    """(K, 4) [x1, y1, x2, y2] image-coordinate boxes covering every edge rule of a map.

    The conformance cases' edge boxes (``jax_roialign.tools.problems``), in image
    coordinates for this spatial_scale: tiny, zero-size, straddling each edge, wholly
    outside, larger than the map, inverted, exactly 3 x 3 map pixels.
    """
    return edge_boxes_on_map(height, width, 3, 3) / scale


def random_features(seed: int, shape: tuple[int, ...], dtype: str = "float64") -> np.ndarray:
    """Standard-normal features, rounded to dtype (so every path sees identical inputs)."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return x.astype(jnp.dtype(dtype)).astype(np.float64)


def random_boxes(seed: int, k: int, height: int, width: int, scale: float, max_frac: float = 0.8) -> np.ndarray:
    """k interior-ish (K, 4) boxes in image coordinates with sizes up to max_frac of the map."""
    rng = np.random.default_rng(seed)
    h, w = height / scale, width / scale
    x1 = rng.uniform(-0.1 * w, 0.8 * w, k)
    y1 = rng.uniform(-0.1 * h, 0.8 * h, k)
    bw = rng.uniform(0.05 * w, max_frac * w, k)
    bh = rng.uniform(0.05 * h, max_frac * h, k)
    return np.stack([x1, y1, x1 + bw, y1 + bh], axis=1)


# Angles (degrees) cycled over the rotated edge boxes: quarter turns, their negatives and odd ones.
ANGLES = (0.0, 30.0, -45.0, 90.0, 135.0, 180.0, -100.0, 270.0, 12.5, -90.0, 61.0, 200.0, -170.0, 45.0, 359.0)


def rotated_boxes(seed: int, k: int, height: int, width: int, scale: float) -> np.ndarray:
    """(K, 5) [cx, cy, w, h, angle_degrees] image-coordinate boxes: the edge boxes turned by ANGLES, plus k random.

    The edge boxes keep their (possibly zero or negative) width and height; the random
    ones have random centres, sizes and angles in [-180, 180).
    """
    edge = edge_boxes(height, width, scale)
    angles = np.resize(np.asarray(ANGLES), len(edge))
    rotated = np.stack(
        [
            (edge[:, 0] + edge[:, 2]) / 2,
            (edge[:, 1] + edge[:, 3]) / 2,
            edge[:, 2] - edge[:, 0],
            edge[:, 3] - edge[:, 1],
            angles,
        ],
        axis=1,
    )
    plain = random_boxes(seed, k, height, width, scale)
    rng = np.random.default_rng(seed + 1)
    random = np.stack(
        [
            (plain[:, 0] + plain[:, 2]) / 2,
            (plain[:, 1] + plain[:, 3]) / 2,
            plain[:, 2] - plain[:, 0],
            plain[:, 3] - plain[:, 1],
            rng.uniform(-180.0, 180.0, k),
        ],
        axis=1,
    )
    return np.concatenate([rotated, random])


def assert_gradients_match_differences(loss, args, eps: float = 1e-6, directions: int = 3) -> None:
    """jax.grad of a scalar loss against central differences along random directions, for every argument."""
    grads = jax.jit(jax.grad(loss, argnums=tuple(range(len(args)))))(*args)
    rng = np.random.default_rng(0)
    for i, grad in enumerate(grads):
        for _ in range(directions):
            direction = rng.standard_normal(grad.shape)
            step = [jnp.zeros_like(a) for a in args]
            step[i] = eps * jnp.asarray(direction, args[i].dtype)
            plus = loss(*[a + s for a, s in zip(args, step, strict=True)])
            minus = loss(*[a - s for a, s in zip(args, step, strict=True)])
            np.testing.assert_allclose(np.vdot(grad, direction), (plus - minus) / (2 * eps), rtol=1e-6, atol=1e-6)


def tpu_abstract_device() -> jax.sharding.AbstractDevice:
    """An abstract TPU v5e chip, for lowering the Mosaic kernels without one.

    ``AbstractDevice`` takes a ``platform`` from jax 0.10.2 on (and the Mosaic lowering
    reads it there); jax 0.10.0 and 0.10.1 take the device kind alone.
    """
    extra = {"platform": "tpu"} if "platform" in inspect.signature(jax.sharding.AbstractDevice).parameters else {}
    return jax.sharding.AbstractDevice(device_kind="TPU v5 lite", num_cores=1, **extra)
