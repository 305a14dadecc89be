"""The design card's seed examples, as literal numbers."""

from __future__ import annotations

import numpy as np
import pytest

import jax_roialign as jr
from jax_roialign.compat import detectron2, tensorflow, torchvision

MAP6 = (10 * np.arange(6)[:, None] + np.arange(6)[None, :]).astype(np.float32)
ALIGNED6 = np.array(
    [[8.25, 8.75, 9.25, 9.75], [13.25, 13.75, 14.25, 14.75], [18.25, 18.75, 19.25, 19.75], [23.25, 23.75, 24.25, 24.75]]
)
LEGACY6 = np.array(
    [
        [13.75, 14.25, 14.75, 15.25],
        [18.75, 19.25, 19.75, 20.25],
        [23.75, 24.25, 24.75, 25.25],
        [28.75, 29.25, 29.75, 30.25],
    ]
)


@pytest.mark.parametrize("aligned,expected", [(True, ALIGNED6), (False, LEGACY6)])
def test_six_by_six_map(aligned, expected):
    out = jr.roi_align(
        MAP6[None, :, :, None], np.array([[1.0, 1, 3, 3]], np.float32), 4, sampling_ratio=1, aligned=aligned
    )
    np.testing.assert_allclose(np.asarray(out)[0, :, :, 0], expected, rtol=1e-6)
    # The same through torchvision's signature (NCHW, (K, 5) rows).
    tv = torchvision.roi_align(
        MAP6[None, None], np.array([[0.0, 1, 1, 3, 3]], np.float32), 4, sampling_ratio=1, aligned=aligned
    )
    np.testing.assert_allclose(np.asarray(tv)[0, 0], expected, rtol=1e-6)


def test_six_by_six_crop_and_resize():
    box = np.array([[1 / 5, 1 / 5, 3 / 5, 3 / 5]], np.float32)
    out = tensorflow.crop_and_resize(MAP6[None, :, :, None], box, np.array([0]), (4, 4))
    expected = np.array(
        [
            [11, 11 + 2 / 3, 12 + 1 / 3, 13],
            [17.6666667, 18.3333333, 19, 19.6666667],
            [24.3333333, 25, 25.6666667, 26.3333333],
            [31, 31 + 2 / 3, 32 + 1 / 3, 33],
        ]
    )
    np.testing.assert_allclose(np.asarray(out)[0, :, :, 0], expected, rtol=1e-5)


@pytest.mark.parametrize(
    "aligned,first_row,last_row",
    [
        (True, [4.5, 5, 5.5, 6], [12, 12.5, 13, 13.5]),
        (False, [7.5, 8, 8.5, 9], [15, 15.5, 16, 16.5]),
    ],
)
def test_detectron2_five_by_five(aligned, first_row, last_row):
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    out = np.asarray(detectron2.roi_align(x, np.array([[0.0, 1, 1, 3, 3]], np.float32), 4, 1.0, 0, aligned))
    np.testing.assert_allclose(out[0, 0, 0], first_row, rtol=1e-6)
    np.testing.assert_allclose(out[0, 0, -1], last_row, rtol=1e-6)
    # Both conventions step by half a pixel per bin: 5 * 0.5 down the rows.
    np.testing.assert_allclose(np.diff(out[0, 0, :, 0]), 2.5, rtol=1e-6)
