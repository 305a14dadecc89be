"""``python -m jax_roialign bench``: named workloads timed side by side with the installed peers.

Every runner times the same problem (``jax_roialign.tools.arg_specs``) in one process:
ours under jax.jit in NHWC; for RoIAlign torchvision.ops.roi_align (NCHW, ``--threads``
intra-op threads), onnxruntime's RoiAlign (forward only; avg, and its max, which is our
corner_max) and TensorFlow's crop_and_resize followed by an average or max pool (the
usual TF emulation of RoIAlign; fixed sampling only); for resize torch's F.interpolate
and jax.image.resize; for mask pasting torchvision's paste_masks_in_image.
Forward+backward means the output and the gradient w.r.t. the features for a fixed
random cotangent, boxes detached, which is what every peer offers (a training step:
``timing.training_step``); ours is also timed with the boxes' gradient.  Times are
medians of ``--repeats`` calls after a warm-up call (ours: the forward and both steps
called in turn, so that their ratios share the machine's slow spells); our compile time
is the lower+compile of the jitted call.  The Markdown table goes to stdout; ``--json``
also writes the results with their environment (device, versions, commit).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from collections.abc import Sequence
from pathlib import Path

from jax_roialign.tools.arg_specs import WORKLOADS, PasteWorkload, ResizeWorkload, Workload
from jax_roialign.tools.bench import compile_time
from jax_roialign.tools.bench.peers import PEERS, RUNNERS, installed_peers, runs
from jax_roialign.tools.bench.report import markdown_table, plot_scaling, scaling_table
from jax_roialign.tools.bench.timing import time_ours
from jax_roialign.tools.environment import environment

SCALING_BOXES = (64, 128, 256, 512, 1024, 2048, 4096, 8192)


def _platform() -> str:
    import jax

    return jax.default_backend()


def _time_or_decline(workload: Workload, impl: str, repeats: int) -> dict:
    """time_ours, or a note where the implementation declines the workload (no such kernel)."""
    try:
        return time_ours(workload, impl, repeats)
    except NotImplementedError as error:
        return {"note": str(error)}


def run_workload(
    workload: Workload | ResizeWorkload | PasteWorkload,
    impls: Sequence[str],
    peers: Sequence[str],
    threads: int,
    repeats: int,
) -> dict:
    """{runner name: timings} for one workload: ours (per impl for box pooling), then every peer of its op."""
    if isinstance(workload, Workload):
        rows = {f"jax_roialign[{impl}]": _time_or_decline(workload, impl, repeats) for impl in impls}
    else:
        rows = {"jax_roialign": time_ours(workload, "xla", repeats)}
    for peer in peers:
        if runs(peer, workload):
            rows[peer] = RUNNERS[workload.op, peer](workload, threads, repeats)
    return rows


def scaling(impls: Sequence[str], peers: Sequence[str], threads: int, repeats: int) -> dict:
    """Times against the number of boxes on fpn-p3-sr2: {runner: {K: forward, fwd+bwd ms, peak / floor}}."""
    out: dict = {}
    for k in SCALING_BOXES:
        rows = run_workload(
            WORKLOADS["fpn-p3-sr2"].with_boxes(k), impls, [p for p in peers if p == "torchvision"], threads, repeats
        )
        for runner, r in rows.items():
            keys = ("forward_ms", "forward_backward_ms", "backward_peak_over_floor")
            out.setdefault(runner, {})[k] = {key: r[key] for key in keys if key in r}
    return out


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workload", action="append", choices=sorted(WORKLOADS), help="workload to run (repeatable; default: all)"
    )
    parser.add_argument(
        "--impl", action="append", choices=("xla", "pallas", "cpu"), help="our implementation(s) (default: xla)"
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
        help="also write the results (environment, every timing) here as JSON; nothing is written without it, so "
        "that a quick run never replaces saved results (e.g. benchmarks/results/<device>.json)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="measure first-call compile times on fpn-p3 per output size, sampling ratio and mode, and exit",
    )
    parser.add_argument(
        "--table", type=Path, metavar="JSON", help="print the Markdown table of saved results and exit (runs nothing)"
    )


def run(args: argparse.Namespace) -> int:
    if args.table is not None:
        saved = json.loads(args.table.read_text())
        print(markdown_table(saved))
        if "scaling" in saved:
            print("\n" + scaling_table(saved["scaling"]))
        return 0
    if args.compile:
        rows = compile_time.print_table()
        if args.json is not None:
            args.json.write_text(json.dumps({"environment": environment(), "compile": rows}, indent=2) + "\n")
            print(f"results written to {args.json}")
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
    if args.scaling:
        results["scaling"] = scaling(impls, peers, args.threads, args.repeats)
        print(scaling_table(results["scaling"]))
        plot_scaling(results["scaling"], args.scaling)
        print(f"scaling plot written to {args.scaling}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0
