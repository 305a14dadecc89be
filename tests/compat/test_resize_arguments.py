"""The resize twins reject what their frameworks reject, naming the argument (no compilation: fast)."""

from __future__ import annotations

import numpy as np
import pytest

from jax_roialign.compat import chainer, detectron2, onnx, opencv, tensorflow, torch, torchvision

NCHW = np.zeros((1, 2, 5, 7), np.float32)
NHWC = np.zeros((1, 5, 7, 2), np.float32)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: torch.interpolate(NCHW, 4, mode="nearest", align_corners=True), ValueError, "align_corners"),
        (lambda: torch.interpolate(NCHW, 4, mode="area", antialias=True), ValueError, "Anti-alias"),
        (lambda: torch.interpolate(NCHW, 4, scale_factor=2.0), ValueError, "only one of size or scale_factor"),
        (lambda: torch.interpolate(NCHW, 4, recompute_scale_factor=True), ValueError, "recompute_scale_factor"),
        (lambda: torch.interpolate(NCHW, 4, mode="trilinear"), ValueError, "mode"),
        (lambda: torch.interpolate(NCHW.astype(np.int32), 4, mode="bilinear"), TypeError, "uint8"),
        (lambda: torch.interpolate(NCHW.astype(np.uint8), 4, mode="area"), TypeError, "area"),
        (lambda: torch.interpolate(NCHW, scale_factor=0.1), ValueError, "empty output"),
        (lambda: tensorflow.resize(NHWC, (4, 4), method="cubic"), ValueError, "method"),
        (lambda: tensorflow.resize_bilinear(NHWC, (4, 4), True, True), ValueError, "half_pixel_centers"),
        (lambda: tensorflow.resize_v1(NHWC, (4, 4), "area", half_pixel_centers=True), ValueError, "resize_area"),
        (lambda: onnx.resize(NCHW, scales=[1, 1, 2, 2], opset=12), ValueError, "opset"),
        (lambda: onnx.resize(NCHW, scales=[1, 1, 2, 2], mode="linear", antialias=1, opset=13), ValueError, "antialias"),
        (
            lambda: onnx.resize(
                NCHW, scales=[1, 1, 2, 2], coordinate_transformation_mode="half_pixel_symmetric", opset=18
            ),
            ValueError,
            "coordinate_transformation_mode",
        ),  # fmt: skip
        (lambda: onnx.resize(NCHW, scales=[1, 2, 2, 2]), ValueError, "only the spatial axes"),
        (lambda: onnx.resize(NCHW, scales=[1, 1, 2, 2], sizes=[1, 2, 4, 4]), ValueError, "exactly one"),
        (lambda: onnx.resize(NCHW.astype(np.uint8), scales=[1, 1, 2, 2], mode="cubic"), TypeError, "uint8 cubic"),
        (lambda: onnx.resize(NCHW.astype(np.int8), scales=[1, 1, 2, 2], mode="linear"), TypeError, "uint8"),
        (lambda: onnx.upsample(NCHW, [1, 1, 2, 2], opset=10), ValueError, "Upsample"),
        (lambda: opencv.resize(NHWC[0], (4, 4), interpolation=4), ValueError, "interpolation"),
        (lambda: opencv.resize(NHWC[0], (4, 4), np.zeros((4, 4, 2))), ValueError, "dst"),
        (lambda: opencv.resize(NHWC[0], None), ValueError, "output size"),
        (lambda: opencv.resize(NHWC[0].astype(np.int16), (4, 4)), TypeError, "uint8"),
        (lambda: chainer.resize_images(NCHW, (4, 4), mode="bicubic"), ValueError, "mode"),
        (lambda: torchvision.paste_masks_in_image(np.zeros((2, 7, 7)), np.zeros((2, 4)), (9, 9)), ValueError, "masks"),
        (
            lambda: torchvision.paste_masks_in_image(np.zeros((2, 1, 7, 7)), np.zeros((3, 4)), (9, 9)),
            ValueError,
            "boxes",
        ),
        (
            lambda: detectron2.paste_masks_in_image(np.zeros((2, 7, 7)), np.zeros((2, 4), np.float32), (9,)),
            TypeError,
            "image_size",
        ),  # fmt: skip
    ],
)
def test_twins_reject_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
