"""Seeded problems shared by the conformance cases and the test-suite: edge boxes, random boxes, features."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def edge_boxes_on_map(height: int, width: int, out_h: int, out_w: int) -> np.ndarray:
    """(K, 4) [x1, y1, x2, y2] boxes in feature-map pixels covering every edge rule.

    Divide by spatial_scale to get image coordinates; scales are powers of two, so the
    round trip through the framework's ``x * spatial_scale`` is exact.
    """
    h, w = float(height), float(width)
    boxes = [
        [0.3 * w, 0.4 * h, 0.3 * w + 0.2, 0.4 * h + 0.3],  # tiny: under one pixel each way
        [0.5 * w, 0.5 * h, 0.5 * w, 0.5 * h],  # zero-size point
        [0.2 * w, 0.3 * h, 0.2 * w, 0.7 * h],  # zero width
        [0.1 * w, 0.6 * h, 0.8 * w, 0.6 * h],  # zero height
        [-0.2 * w, 0.1 * h, 0.3 * w, 0.6 * h],  # straddles the left edge
        [0.3 * w, -0.25 * h, 0.7 * w, 0.35 * h],  # straddles the top edge
        [0.75 * w, 0.2 * h, 1.3 * w, 0.6 * h],  # straddles the right edge
        [0.1 * w, 0.7 * h, 0.5 * w, 1.4 * h],  # straddles the bottom edge
        [-0.9 * w, -0.8 * h, -0.3 * w, -0.2 * h],  # wholly outside, negative coordinates
        [1.2 * w, 1.1 * h, 1.9 * w, 1.6 * h],  # wholly outside, beyond W and H
        [-0.5 * w, -0.4 * h, 1.6 * w, 1.7 * h],  # larger than the map
        [2.0, 1.0, 2.0 + out_w, 1.0 + out_h],  # exactly out_h x out_w pixels
        [0.7 * w, 0.2 * h, 0.3 * w, 0.8 * h],  # inverted in x (x2 < x1)
        [0.5 * w, 0.3 * h, 0.5 * w - 0.3, 0.7 * h],  # inverted in x by under a bin
        [0.8 * w, 0.9 * h, 0.2 * w, 0.3 * h],  # inverted in x and y
    ]
    return np.asarray(boxes, np.float64)


def random_boxes_on_map(rng: np.random.Generator, k: int, height: int, width: int) -> np.ndarray:
    """k ordinary (K, 4) [x1, y1, x2, y2] boxes inside the map, in feature-map pixels."""
    x1 = rng.uniform(0.0, 0.6 * width, k)
    y1 = rng.uniform(0.0, 0.6 * height, k)
    x2 = x1 + rng.uniform(1.0, 0.4 * width, k)
    y2 = y1 + rng.uniform(1.0, 0.4 * height, k)
    return np.stack([x1, y1, x2, y2], axis=1)


def random_features(rng: np.random.Generator, shape: Sequence[int], dtype: str) -> np.ndarray:
    """Standard-normal values (no ties, so max-pooling gradients are unambiguous)."""
    return rng.standard_normal(shape).astype(dtype)
