"""The peers, each timing the same workload in this process: torchvision, onnxruntime, TensorFlow.

Each is imported only when it runs.  Forward+backward is the gradient w.r.t. the
features for a fixed random cotangent, boxes detached (what every peer offers).
"""

from __future__ import annotations

import importlib.util

import numpy as np

from jax_roialign.tools.arg_specs import Workload
from jax_roialign.tools.bench.timing import median_seconds

PEERS = ("torchvision", "onnxruntime", "tensorflow")
# The workload ops each peer has (roi_align_rotated has none installable here: Detectron2 and mmcv).
PEER_OPS = {"torchvision": ("roi_align", "ps_roi_align"), "onnxruntime": ("roi_align",), "tensorflow": ("roi_align",)}


def time_torchvision(workload: Workload, threads: int, repeats: int) -> dict:
    """torchvision.ops.roi_align or ps_roi_align (the workload's op), NCHW, in this process."""
    import torch
    import torchvision

    torch.set_num_threads(threads)
    x, boxes, idx = workload.arrays()
    feats = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    rois = torch.from_numpy(np.concatenate([idx[:, None].astype(np.float32), boxes], axis=1))
    cot = torch.from_numpy(
        np.random.default_rng(1)
        .standard_normal((workload.num_boxes,) + (workload.output_size,) * 2 + (workload.output_channels,))
        .astype(np.float32)
        .transpose(0, 3, 1, 2)
        .copy()
    )
    kw = {
        "output_size": workload.output_size,
        "spatial_scale": workload.spatial_scale,
        "sampling_ratio": workload.sampling_ratio if workload.sampling_ratio > 0 else -1,
    }
    if workload.op == "roi_align":
        kw["aligned"] = workload.aligned
    op = getattr(torchvision.ops, workload.op)

    def forward():
        with torch.no_grad():
            op(feats, rois, **kw)

    def forward_backward():
        leaf = feats.detach().requires_grad_(True)
        op(leaf, rois, **kw).backward(cot)

    return {
        "forward_ms": 1e3 * median_seconds(forward, repeats),
        "forward_backward_ms": 1e3 * median_seconds(forward_backward, repeats),
    }


def time_onnxruntime(workload: Workload, threads: int, repeats: int) -> dict:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    x, boxes, idx = workload.arrays()
    node = helper.make_node(
        "RoiAlign",
        ["X", "rois", "batch_indices"],
        ["Y"],
        mode="avg",
        output_height=workload.output_size,
        output_width=workload.output_size,
        sampling_ratio=max(workload.sampling_ratio, 0),
        spatial_scale=workload.spatial_scale,
        coordinate_transformation_mode="half_pixel" if workload.aligned else "output_half_pixel",
    )
    graph = helper.make_graph(
        [node],
        "roialign",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("rois", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("batch_indices", TensorProto.INT64, None),
        ],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {"X": np.ascontiguousarray(x.transpose(0, 3, 1, 2)), "rois": boxes, "batch_indices": idx.astype(np.int64)}
    return {"forward_ms": 1e3 * median_seconds(lambda: session.run(None, feeds), repeats)}


def time_tensorflow(workload: Workload, threads: int, repeats: int) -> dict:
    if workload.sampling_ratio <= 0:
        return {"note": "no adaptive sampling in crop_and_resize"}
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    x, boxes, idx = workload.arrays()
    sr, out = workload.sampling_ratio, workload.output_size
    # Sample s of bin p sits at x1 + (p + (s + 0.5) / sr) * bin: crop_and_resize's grid of
    # out * sr points spans [first, last] sample, in normalized [y1, x1, y2, x2].
    scale = workload.spatial_scale
    x1, y1, x2, y2 = (boxes[:, i] * scale - 0.5 for i in range(4))
    step_x, step_y = (x2 - x1) / (out * sr), (y2 - y1) / (out * sr)
    h, w = workload.height, workload.width
    norm = np.stack(
        [
            (y1 + 0.5 * step_y) / (h - 1),
            (x1 + 0.5 * step_x) / (w - 1),
            (y2 - 0.5 * step_y) / (h - 1),
            (x2 - 0.5 * step_x) / (w - 1),
        ],
        axis=1,
    ).astype(np.float32)
    feats, norm, idx = tf.constant(x), tf.constant(norm), tf.constant(idx)
    cot = tf.constant(
        np.random.default_rng(1).standard_normal((workload.num_boxes, out, out, workload.channels)).astype(np.float32)
    )

    @tf.function
    def forward(feats):
        crops = tf.image.crop_and_resize(feats, norm, idx, (out * sr, out * sr))
        return tf.nn.avg_pool2d(crops, sr, sr, "VALID")

    @tf.function
    def forward_backward(feats):
        with tf.GradientTape() as tape:
            tape.watch(feats)
            y = forward(feats)
        return tape.gradient(y, feats, output_gradients=cot)

    return {
        "forward_ms": 1e3 * median_seconds(lambda: forward(feats).numpy(), repeats),
        "forward_backward_ms": 1e3 * median_seconds(lambda: forward_backward(feats).numpy(), repeats),
        "note": "crop_and_resize + avg_pool emulation",
    }


def installed_peers() -> list[str]:
    """The peers whose Python modules are importable here."""
    return [p for p in PEERS if importlib.util.find_spec(p) is not None]


RUNNERS = {"torchvision": time_torchvision, "onnxruntime": time_onnxruntime, "tensorflow": time_tensorflow}
