"""``python -m jax_roialign bench``: named workloads timed side by side with the installed peers.

Every runner times the same problem (jax_roialign.arg_specs) in one process: ours under
jax.jit in NHWC, torchvision.ops.roi_align (NCHW, ``--threads`` intra-op threads),
onnxruntime's RoiAlign (forward only) and TensorFlow's crop_and_resize followed by an
average pool (the usual TF emulation of RoIAlign; fixed sampling only).  Forward+backward
means the gradient w.r.t. the features for a fixed random cotangent, boxes detached,
which is what every peer offers; ours is also timed with the boxes' gradient.  Times are
medians of ``--repeats`` calls after a warm-up call; our compile time is the
lower+compile of the jitted call.  Results go to a JSON file (device, versions, commit)
and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from jax_roialign.arg_specs import WORKLOADS, Workload

PEERS = ("torchvision", "onnxruntime", "tensorflow")
SCALING_BOXES = (128, 256, 512, 1024, 2048)


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of fn() over `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _ours(workload: Workload, impl: str, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    from jax_roialign import roi_align

    x, boxes, idx = (jnp.asarray(a) for a in workload.arrays())
    cot = jnp.asarray(
        np.random.default_rng(1).standard_normal(
            (workload.num_boxes,) + (workload.output_size,) * 2 + (workload.channels,)
        ),
        x.dtype,
    )

    def pool(x, boxes):
        return roi_align(x, boxes, workload.output_size, batch_indices=idx, impl=impl, **workload.kwargs())

    # Each function is compiled once, ahead of time, and the compiled executables are timed.
    start = time.perf_counter()
    forward = jax.jit(pool).lower(x, boxes).compile()
    compile_s = time.perf_counter() - start
    backward = jax.jit(jax.grad(lambda x, boxes: jnp.vdot(pool(x, jax.lax.stop_gradient(boxes)), cot)))
    backward = backward.lower(x, boxes).compile()
    with_boxes = jax.jit(jax.grad(lambda x, boxes: jnp.vdot(pool(x, boxes), cot), argnums=(0, 1)))
    with_boxes = with_boxes.lower(x, boxes).compile()
    memory = backward.memory_analysis()
    result = {
        "forward_ms": 1e3 * median_seconds(lambda: forward(x, boxes).block_until_ready(), repeats),
        "forward_backward_ms": 1e3 * median_seconds(lambda: backward(x, boxes).block_until_ready(), repeats),
        "forward_backward_boxes_ms": 1e3 * median_seconds(lambda: jax.block_until_ready(with_boxes(x, boxes)), repeats),
        "compile_s": compile_s,
    }
    if memory is not None:
        # XLA's buffer assignment: live arguments, outputs and temporaries at the peak.
        peak = memory.argument_size_in_bytes + memory.output_size_in_bytes + memory.temp_size_in_bytes
        floor = workload.output_bytes() + 2 * workload.feature_bytes()  # output + features + their gradient
        result["backward_peak_mb"] = peak / 2**20
        result["backward_peak_over_floor"] = peak / floor
    return result


def _torchvision(workload: Workload, threads: int, repeats: int) -> dict:
    import torch
    import torchvision

    torch.set_num_threads(threads)
    x, boxes, idx = workload.arrays()
    feats = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    rois = torch.from_numpy(np.concatenate([idx[:, None].astype(np.float32), boxes], axis=1))
    cot = torch.from_numpy(
        np.random.default_rng(1)
        .standard_normal((workload.num_boxes,) + (workload.output_size,) * 2 + (workload.channels,))
        .astype(np.float32)
        .transpose(0, 3, 1, 2)
        .copy()
    )
    kw = {
        "output_size": workload.output_size,
        "spatial_scale": workload.spatial_scale,
        "sampling_ratio": workload.sampling_ratio if workload.sampling_ratio > 0 else -1,
        "aligned": workload.aligned,
    }

    def forward():
        with torch.no_grad():
            torchvision.ops.roi_align(feats, rois, **kw)

    def forward_backward():
        leaf = feats.detach().requires_grad_(True)
        torchvision.ops.roi_align(leaf, rois, **kw).backward(cot)

    return {
        "forward_ms": 1e3 * median_seconds(forward, repeats),
        "forward_backward_ms": 1e3 * median_seconds(forward_backward, repeats),
    }


def _onnxruntime(workload: Workload, threads: int, repeats: int) -> dict:
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


def _tensorflow(workload: Workload, threads: int, repeats: int) -> dict:
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


def environment() -> dict:
    """Device, library versions and commit, recorded with every result."""
    import jax

    versions = {}
    for dist in ("jax", "jaxlib", "torch", "torchvision", "onnxruntime", "tensorflow-cpu", "tensorflow"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    device = jax.devices()[0]
    return {
        "device": f"{device.platform}: {device.device_kind}",
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "versions": versions,
        "commit": commit,
        "date": time.strftime("%Y-%m-%d"),
    }


def _platform() -> str:
    import jax

    return jax.default_backend()


def device_tag() -> str:
    """File name for results: e.g. cpu-2core, or the GPU's kind."""
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        return f"cpu-{os.cpu_count()}core"
    return device.device_kind.lower().replace(" ", "-")


def run_workload(workload: Workload, impls: Sequence[str], peers: Sequence[str], threads: int, repeats: int) -> dict:
    """{runner name: timings} for one workload."""
    rows = {f"jax_roialign[{impl}]": _ours(workload, impl, repeats) for impl in impls}
    runners = {"torchvision": _torchvision, "onnxruntime": _onnxruntime, "tensorflow": _tensorflow}
    for peer in peers:
        rows[peer] = runners[peer](workload, threads, repeats)
    return rows


def _cell(row: dict, key: str, fmt: str = "{:.0f}") -> str:
    return fmt.format(row[key]) if key in row else "-"


def _speedup(row: dict, reference: dict, key: str) -> str:
    """reference time over row time, e.g. "3.2x" (how much faster row is)."""
    return f"{reference[key] / row[key]:.1f}x" if key in row and key in reference else "-"


def markdown_table(results: dict) -> str:
    """The README table: one row per workload and runner, with speed-ups over torchvision.

    "peak / floor": XLA's peak buffer bytes of the jitted forward+backward over the
    bytes that must exist anyway (output + features + feature gradient).
    """
    lines = [
        "| workload | runner | forward ms | fwd+bwd ms | fwd speed-up | fwd+bwd speed-up | compile s | peak / floor "
        "| fwd+bwd incl. boxes ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in results["workloads"].items():
        tv = rows.get("torchvision", {})
        for runner, r in rows.items():
            ref = {} if runner == "torchvision" else tv
            lines.append(
                f"| {name} | {runner} | {_cell(r, 'forward_ms')} | {_cell(r, 'forward_backward_ms')} | "
                f"{_speedup(r, ref, 'forward_ms')} | {_speedup(r, ref, 'forward_backward_ms')} | "
                f"{_cell(r, 'compile_s', '{:.1f}')} | {_cell(r, 'backward_peak_over_floor', '{:.2f}')} | "
                f"{_cell(r, 'forward_backward_boxes_ms')} |"
            )
    return "\n".join(lines)


def scaling(impls: Sequence[str], peers: Sequence[str], threads: int, repeats: int) -> dict:
    """Times against the number of boxes on fpn-p3-sr2: {runner: {K: forward, fwd+bwd ms}}."""
    out: dict = {}
    for k in SCALING_BOXES:
        rows = run_workload(
            WORKLOADS["fpn-p3-sr2"].with_boxes(k), impls, [p for p in peers if p == "torchvision"], threads, repeats
        )
        for runner, r in rows.items():
            out.setdefault(runner, {})[k] = {key: r[key] for key in ("forward_ms", "forward_backward_ms")}
    return out


def plot_scaling(curves: dict, path: Path) -> None:
    """Time against K, one line per runner and pass, as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError('the scaling plot needs matplotlib: pip install "jax-roialign[viz]"') from err
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for runner, points in curves.items():
        ks = sorted(points)
        for key, style in (("forward_ms", "-o"), ("forward_backward_ms", "--s")):
            label = f"{runner} {'forward' if key == 'forward_ms' else 'fwd+bwd'}"
            ax.plot(ks, [points[k][key] for k in ks], style, label=label)
    ax.set(
        xscale="log", yscale="log", xlabel="boxes K", ylabel="median time (ms)", title="fpn-p3-sr2: time against boxes"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workload", action="append", choices=sorted(WORKLOADS), help="workload to run (repeatable; default: all)"
    )
    parser.add_argument(
        "--impl", action="append", choices=("xla", "pallas"), help="our implementation(s) (default: xla)"
    )
    parser.add_argument("--peer", action="append", choices=PEERS, help="peer(s) to run (default: every installed one)")
    parser.add_argument("--no-peers", action="store_true", help="time jax_roialign only")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="intra-op threads of the peers (default: all cores)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement; the median is reported")
    parser.add_argument(
        "--scaling", type=Path, metavar="PNG", help="also sweep K on fpn-p3-sr2 and plot time against K"
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="write results here (default: benchmarks/results/<device>.json when run from the repository)",
    )
    parser.add_argument(
        "--table", type=Path, metavar="JSON", help="print the Markdown table of saved results and exit (runs nothing)"
    )


def run(args: argparse.Namespace) -> int:
    if args.table is not None:
        print(markdown_table(json.loads(args.table.read_text())))
        return 0
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats!r}")
    if args.threads is None or args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads!r}")
    peers = [] if args.no_peers else (args.peer or installed_peers())
    missing = [p for p in peers if importlib.util.find_spec(p) is None]
    if missing:
        raise ValueError(f"--peer {missing[0]!r} is not installed")
    impls = args.impl or ["xla"]
    if "pallas" in impls and _platform() == "cpu":
        raise ValueError("--impl 'pallas' on a CPU runs the Pallas interpreter, whose timings mean nothing")
    results = {"environment": environment(), "threads": args.threads, "repeats": args.repeats, "workloads": {}}
    for name in args.workload or list(WORKLOADS):
        results["workloads"][name] = run_workload(WORKLOADS[name], impls, peers, args.threads, args.repeats)
        print(f"{name}: done", flush=True)
    print(markdown_table(results))
    path = args.json
    if path is None and (Path.cwd() / "benchmarks").is_dir():
        path = Path("benchmarks") / "results" / f"{device_tag()}.json"
    if args.scaling:
        results["scaling"] = scaling(impls, peers, args.threads, args.repeats)
        plot_scaling(results["scaling"], args.scaling)
        print(f"scaling plot written to {args.scaling}")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"results written to {path}")
    return 0
