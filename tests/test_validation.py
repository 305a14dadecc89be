"""Bad input gets a clear ValueError or TypeError naming the argument and the value."""

from __future__ import annotations

import numpy as np
import pytest

import jax_roialign as jr
from jax_roialign.compat import onnx, tensorflow, torchvision

X = np.zeros((2, 8, 9, 3), np.float32)
BOXES = np.array([[1.0, 1.0, 5.0, 6.0], [0.0, 2.0, 3.0, 7.0]], np.float32)
IDX = np.array([0, 1], np.int32)


def call(**overrides):
    kwargs = dict(features=X, boxes=BOXES, output_size=2, batch_indices=IDX)
    kwargs.update(overrides)
    return jr.roi_align(**kwargs)


@pytest.mark.parametrize(
    "overrides,error,pattern",
    [
        (dict(features=np.zeros((8, 9, 3), np.float32)), ValueError, r"features must have shape \(N, H, W, C\)"),
        (dict(features=np.zeros((2, 8, 9, 3), np.int32)), TypeError, "features must be floating point.*int32"),
        (dict(features=np.zeros((2, 0, 9, 3), np.float32)), ValueError, "features must have a non-empty spatial"),
        (dict(boxes=np.zeros((2, 3), np.float32)), ValueError, r"boxes must have shape .*got shape \(2, 3\)"),
        (dict(boxes=np.zeros((2, 4), np.int32)), TypeError, "boxes must be floating point"),
        (dict(batch_indices=np.array([0, 1, 1])), ValueError, r"batch_indices must have shape \(2,\)"),
        (dict(batch_indices=np.array([0.0, 1.0])), TypeError, "batch_indices must be integers"),
        (dict(batch_indices=np.array([0, 2])), ValueError, r"batch_indices must lie in \[0, 2\).*\[2\]"),
        (dict(batch_indices=None), ValueError, "batch_indices is required"),
        (dict(boxes=np.zeros((2, 5), np.float32), batch_indices=IDX), ValueError, "batch_indices must be None"),
        (dict(boxes=np.array([[0.5, 0, 0, 1, 1]], np.float32), batch_indices=None), ValueError, "whole numbers"),
        (dict(boxes=np.zeros((3, 2, 4), np.float32), batch_indices=None), ValueError, "one row per image"),
        (dict(output_size=0), ValueError, "output_size must be >= 1, got 0"),
        (dict(output_size=(2, 0)), ValueError, r"output_size must be >= 1, got \(2, 0\)"),
        (dict(output_size=2.5), TypeError, "output_size must be an int or a pair"),
        (dict(sampling_ratio=1.5), TypeError, "sampling_ratio must be an int, got 1.5"),
        (dict(spatial_scale=0.0), ValueError, "spatial_scale must be finite and > 0, got 0.0"),
        (dict(spatial_scale=float("nan")), ValueError, "spatial_scale must be finite and > 0, got nan"),
        (dict(spatial_scale="1"), TypeError, "spatial_scale must be a Python number"),
        (dict(mode="mean"), ValueError, "mode must be one of .* got 'mean'"),
        (dict(data_format="CHW"), ValueError, "data_format must be one of .* got 'CHW'"),
        (dict(impl="cuda"), ValueError, "impl must be one of .* got 'cuda'"),
        (dict(aligned="yes"), TypeError, "aligned must be a bool"),
    ],
)
def test_roi_align_rejects(overrides, error, pattern):
    with pytest.raises(error, match=pattern):
        call(**overrides)


def test_roi_pool_rejects_bad_scale():
    with pytest.raises(ValueError, match="spatial_scale must be finite and > 0, got -1"):
        jr.roi_pool(X, BOXES, 2, batch_indices=IDX, spatial_scale=-1)


def test_compat_rejects():
    nchw = np.zeros((1, 2, 5, 5), np.float32)
    with pytest.raises(ValueError, match="boxes must be a \\(K, 5\\) array or a list"):
        torchvision.roi_align(nchw, np.zeros((1, 4), np.float32), 2)
    with pytest.raises(ValueError, match=r"boxes\[0\] must have shape \(L, 4\)"):
        torchvision.roi_align(nchw, [np.zeros((1, 5), np.float32)], 2)
    rois = np.zeros((1, 4), np.float32)
    with pytest.raises(ValueError, match=r"opset must be one of RoiAlign's versions \(10, 16, 22\), got 11"):
        onnx.roi_align(nchw, rois, np.array([0]), opset=11)
    with pytest.raises(ValueError, match="coordinate_transformation_mode must be one of"):
        onnx.roi_align(nchw, rois, np.array([0]), coordinate_transformation_mode="asymmetric")
    with pytest.raises(ValueError, match="sampling_ratio must be >= 0 in ONNX, got -1"):
        onnx.roi_align(nchw, rois, np.array([0]), sampling_ratio=-1)
    with pytest.raises(ValueError, match="method must be one of .* got 'bicubic'"):
        tensorflow.crop_and_resize(np.zeros((1, 5, 5, 2)), rois, np.array([0]), (2, 2), method="bicubic")
    with pytest.raises(ValueError, match=r"box_indices must lie in \[0, 1\)"):
        tensorflow.crop_and_resize(np.zeros((1, 5, 5, 2)), rois, np.array([3]), (2, 2))


def test_rotated_and_position_sensitive_ops_reject():
    from jax_roialign.compat import detectron2, mmcv

    with pytest.raises(
        ValueError, match=r"boxes must have shape \(K, 5\), \(K, 6\) or \(N, R, 5\), got shape \(2, 4\)"
    ):
        jr.roi_align_rotated(X, BOXES, 2, batch_indices=IDX)
    with pytest.raises(TypeError, match="clockwise must be a bool, got 'yes'"):
        jr.roi_align_rotated(X, np.zeros((2, 5), np.float32), 2, batch_indices=IDX, clockwise="yes")
    with pytest.raises(ValueError, match=r"features must have a multiple of out_h \* out_w = 4 channels .* got 3"):
        jr.ps_roi_align(X, BOXES, 2, batch_indices=IDX)
    with pytest.raises(ValueError, match="spatial_scale must be finite and > 0, got 0"):
        jr.ps_roi_pool(np.zeros((2, 8, 9, 4), np.float32), BOXES, 2, batch_indices=IDX, spatial_scale=0)
    nchw = np.zeros((1, 2, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"rois must have shape \(K, 6\) \[batch, cx, cy, w, h, angle_degrees\]"):
        detectron2.roi_align_rotated(nchw, np.zeros((1, 5), np.float32), 2, 1.0, 0)
    with pytest.raises(ValueError, match=r"rois must have shape \(K, 6\) \[batch, cx, cy, w, h, angle\]"):
        mmcv.roi_align_rotated(nchw, np.zeros((1, 5), np.float32), 2)
    with pytest.raises(ValueError, match=r"rois must have shape \(K, 5\)"):
        mmcv.roi_pool(nchw, np.zeros((1, 4), np.float32), 2)
