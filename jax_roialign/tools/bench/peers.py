"""The peers, each timing the same workload in this process.

RoIAlign: torchvision, onnxruntime, TensorFlow; resize: torch (F.interpolate) and
jax.image.resize; mask pasting: torchvision (paste_masks_in_image).  Each is imported
only when it runs.  Forward+backward is the output and the gradient w.r.t. the features
(the images, the masks) for a fixed random cotangent, boxes detached (what every peer
offers), as a training step computes them (``timing.training_step``).
"""

from __future__ import annotations

import importlib.util

import numpy as np

from jax_roialign.tools.arg_specs import PasteWorkload, ResizeWorkload, Workload
from jax_roialign.tools.bench.timing import median_seconds, training_step

PEERS = ("torchvision", "onnxruntime", "tensorflow", "torch", "jax.image")


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
        mode="max" if workload.mode == "corner_max" else "avg",  # its max is our corner_max
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
    pool = "max" if workload.mode == "max" else "avg"
    cot = tf.constant(
        np.random.default_rng(1).standard_normal((workload.num_boxes, out, out, workload.channels)).astype(np.float32)
    )

    @tf.function
    def forward(feats):
        crops = tf.image.crop_and_resize(feats, norm, idx, (out * sr, out * sr))
        return {"max": tf.nn.max_pool2d, "avg": tf.nn.avg_pool2d}[pool](crops, sr, sr, "VALID")

    @tf.function
    def forward_backward(feats):
        with tf.GradientTape() as tape:
            tape.watch(feats)
            y = forward(feats)
        return y, tape.gradient(y, feats, output_gradients=cot)

    return {
        "forward_ms": 1e3 * median_seconds(lambda: forward(feats).numpy(), repeats),
        "forward_backward_ms": 1e3 * median_seconds(lambda: [t.numpy() for t in forward_backward(feats)], repeats),
        "note": f"crop_and_resize + {pool}_pool emulation",
    }


def _torch_timings(run, leaf, cotangent, threads: int, repeats: int) -> dict:
    """forward (no grad) and forward+backward of run(leaf) w.r.t. leaf, in torch."""
    import torch

    torch.set_num_threads(threads)

    def forward():
        with torch.no_grad():
            run(leaf)

    def forward_backward():
        x = leaf.detach().requires_grad_(True)
        run(x).backward(cotangent)

    return {
        "forward_ms": 1e3 * median_seconds(forward, repeats),
        "forward_backward_ms": 1e3 * median_seconds(forward_backward, repeats),
    }


def _cotangent(workload: ResizeWorkload | PasteWorkload) -> np.ndarray:
    """The workload's cotangent, the one time_ours uses (seed 1, float32, our output layout)."""
    return np.random.default_rng(1).standard_normal(workload.output_shape()).astype(np.float32)


def time_torch_interpolate(workload: ResizeWorkload, threads: int, repeats: int) -> dict:
    """F.interpolate on NCHW images: nearest, or bilinear with align_corners=False."""
    import torch
    import torch.nn.functional as F

    (x,) = workload.arrays()
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    cotangent = torch.from_numpy(np.ascontiguousarray(_cotangent(workload).transpose(0, 3, 1, 2)))
    size = (workload.out_height, workload.out_width)
    kwargs = {"mode": "nearest"} if workload.method == "nearest" else {"mode": workload.method, "align_corners": False}
    return _torch_timings(lambda t: F.interpolate(t, size=size, **kwargs), images, cotangent, threads, repeats)


def time_jax_image(workload: ResizeWorkload, threads: int, repeats: int) -> dict:
    """jax.image.resize (half-pixel; "linear" for bilinear) under jax.jit, NHWC as ours."""
    import jax
    import jax.numpy as jnp

    del threads  # XLA's CPU backend uses every core, as ours does
    (x,) = (jnp.asarray(a) for a in workload.arrays())
    cotangent = jnp.asarray(_cotangent(workload))
    method = "nearest" if workload.method == "nearest" else "linear"

    def resize(x):
        return jax.image.resize(x, workload.output_shape(), method)

    forward = jax.jit(resize).lower(x).compile()
    backward = jax.jit(training_step(resize)).lower(cotangent, x).compile()
    return {
        "forward_ms": 1e3 * median_seconds(lambda: forward(x).block_until_ready(), repeats),
        "forward_backward_ms": 1e3 * median_seconds(lambda: jax.block_until_ready(backward(cotangent, x)), repeats),
    }


def time_torchvision_paste(workload: PasteWorkload, threads: int, repeats: int) -> dict:
    """torchvision's paste_masks_in_image (soft masks), gradient w.r.t. the masks."""
    import torch
    from torchvision.models.detection.roi_heads import paste_masks_in_image

    masks, boxes = workload.arrays()
    boxes = torch.from_numpy(boxes)
    cotangent = torch.from_numpy(_cotangent(workload)[:, None])
    image = (workload.height, workload.width)
    run = lambda m: paste_masks_in_image(m, boxes, image)  # noqa: E731
    return _torch_timings(run, torch.from_numpy(masks)[:, None], cotangent, threads, repeats)


def installed_peers() -> list[str]:
    """The peers whose Python modules are importable here."""
    return [p for p in PEERS if importlib.util.find_spec(p) is not None]


# (op, peer) -> runner(workload, threads, repeats); a peer without a runner for an op skips it.
RUNNERS = {
    ("roi_align", "torchvision"): time_torchvision,
    ("ps_roi_align", "torchvision"): time_torchvision,
    ("roi_align", "onnxruntime"): time_onnxruntime,
    ("roi_align", "tensorflow"): time_tensorflow,
    ("resize", "torch"): time_torch_interpolate,
    ("resize", "jax.image"): time_jax_image,
    ("paste_masks", "torchvision"): time_torchvision_paste,
}

# The RoIAlign modes a peer computes: onnxruntime's "max" is our corner_max (the largest
# weighted corner), TF's crops pooled by a max are our max; torchvision has avg only.
_MODES = {"onnxruntime": ("avg", "corner_max"), "tensorflow": ("avg", "max")}


def runs(peer: str, workload: Workload | ResizeWorkload | PasteWorkload) -> bool:
    """Whether the peer has a runner for the workload's op and computes its mode."""
    return (workload.op, peer) in RUNNERS and getattr(workload, "mode", "avg") in _MODES.get(peer, ("avg",))
