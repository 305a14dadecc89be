"""``python -m jax_roialign device-check``: the kernels on real hardware, in one command.

Run on a lent GPU (or TPU) machine by ``benchmarks/device_check.py``, which first
installs this checkout without dependencies.  The steps, each saved to the JSON as it
finishes (a crash or a timeout keeps what was done):

1. ``environment``: device, library versions, commit and a digest of the sources;
2. ``kernel_tests``: the kernel tests, compiled for the device (not interpreted), per
   test outcome (pytest's JUnit XML);
3. ``determinism``: the feature gradient of ``impl="pallas"`` (and of XLA, for the
   record) computed three times, bitwise compared;
4. ``timings``: forward and forward+backward (the features' gradient) of xla, pallas and
   torchvision on the device, on :data:`WORKLOADS`: medians of repeated calls of
   executables compiled ahead of time (torchvision: CUDA-synchronized calls);
5. ``roofline``: each time against the memory roofline, the bytes an ideal kernel moves
   (:func:`ideal_bytes`) over the device's HBM bandwidth (:data:`HBM_BYTES_PER_S`);
6. ``verdict``: whether the kernels are correct (every kernel test passed, bitwise
   deterministic backward) and faster than XLA on every workload, forward and
   forward+backward; if so, the device kind's entry of ``verified_devices.json``
   (written to the output folder, for a person to commit as
   ``kernels/verified_devices.json``).

``--dry-run`` runs the same steps on any machine in seconds: interpret mode, tiny
workloads, a small test selection; its verdict never verifies anything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from jax_roialign.tools.arg_specs import Workload
from jax_roialign.tools.environment import git_commit, installed_versions

ROOT = Path(__file__).resolve().parents[2]

# The workloads: Mask R-CNN's box head on P2..P5 of an 800 x 1088 input (stride
# 4..32, 256 channels), 512 boxes per image (2 images), 7 x 7, sampling ratio 2 and
# adaptive; the mask head (14 x 14 on P2); 4096 boxes on P3.
_LEVELS = {2: (200, 272), 3: (100, 136), 4: (50, 68), 5: (25, 34)}
WORKLOADS: tuple[Workload, ...] = (
    *(
        Workload(f"box-p{level}-{grid}", 2, h, w, 256, 1024, 7, 1 / 2**level, ratio, 16.0, 256.0)
        for grid, ratio in (("sr2", 2), ("adaptive", 0))
        for level, (h, w) in _LEVELS.items()
    ),
    Workload("mask-p2-sr2", 2, 200, 272, 256, 256, 14, 1 / 4, 2, 16.0, 256.0),
    Workload("p3-4096-boxes-sr2", 2, 100, 136, 256, 4096, 7, 1 / 8, 2, 16.0, 256.0),
)
DRY_RUN_WORKLOADS: tuple[Workload, ...] = (Workload("tiny-sr2", 1, 12, 14, 8, 6, 3, 1 / 4, 2, 4.0, 20.0),)

# Peak HBM bandwidth (bytes/s) by device kind, from the vendors' data sheets: H100 SXM5
# 80 GB 3.35 TB/s, H100 PCIe 2.0 TB/s, H200 4.8 TB/s.  A TPU's comes from Pallas' chip
# table (jax.experimental.pallas.tpu).
HBM_BYTES_PER_S: dict[str, float] = {
    "NVIDIA H100 80GB HBM3": 3.35e12,
    "NVIDIA H100 PCIe": 2.0e12,
    "NVIDIA H200": 4.8e12,
}

# The kernel tests run compiled on the device.
KERNEL_TESTS: tuple[str, ...] = ("tests/kernels/test_roi_align.py", "tests/compat/test_fixtures.py")
DRY_RUN_TESTS: tuple[str, ...] = ("tests/kernels/test_config.py",)


class Report:
    """The results, written to ``<out>/device_check.json`` after every step."""

    def __init__(self, out: Path, dry_run: bool):
        self.out = out
        self.path = out / "device_check.json"
        self.data: dict = {"dry_run": dry_run, "steps": {}}
        out.mkdir(parents=True, exist_ok=True)

    def step(self, name: str, run: Callable[[], dict]) -> dict:
        start = time.perf_counter()
        print(f"device-check: {name} ...", flush=True)
        try:
            result = run()
        except Exception as e:  # noqa: BLE001 - a failed step is a result; the next steps still run
            result = {"error": f"{type(e).__name__}: {e}"[:4000]}
        result["seconds"] = round(time.perf_counter() - start, 2)
        self.data["steps"][name] = result
        self.save()
        return result

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str) + "\n")
        tmp.replace(self.path)


def source_digest(root: Path = ROOT) -> str:
    """sha256 over the package's Python sources and data (identifies a checkout without git)."""
    digest = hashlib.sha256()
    for base in ("jax_roialign", "kernels"):
        for path in sorted((root / base).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".json", ".txtpb"):
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def environment_step(commit: str | None) -> dict:
    import jax

    device = jax.devices()[0]
    versions = installed_versions(
        (
            "jax",
            "jaxlib",
            "jax-cuda12-plugin",
            "jax-cuda13-plugin",
            "jax-cuda12-pjrt",
            "jax-cuda13-pjrt",
            "libtpu",
            "torch",
            "torchvision",
            "numpy",
        )
    )
    return {
        "platform": device.platform,
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "versions": versions,
        "commit": commit or git_commit(),
        "source_sha256": source_digest(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def kernel_tests_step(out: Path, dry_run: bool, timeout_s: float) -> dict:
    """pytest on the kernel tests (compiled on a device), one outcome per test from JUnit XML.

    At the timeout pytest is interrupted (SIGINT), which still writes the outcomes of the
    tests that ran.
    """
    import importlib.util
    import signal

    if importlib.util.find_spec("pytest") is None:
        return {"error": "pytest is not installed (benchmarks/device_check.py --wheels DIR installs it)"}
    junit = out / "kernel_tests.xml"
    tests = DRY_RUN_TESTS if dry_run else KERNEL_TESTS
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *tests]
    if not dry_run:
        cmd += ["-k", "kernels or pallas"]
        if importlib.util.find_spec("xdist") is not None:
            cmd += ["-n", "4"]
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")
    with open(out / "kernel_tests.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            status = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            status = f"interrupted after {timeout_s:.0f} s"
    outcomes = parse_junit(junit) if junit.exists() else {}
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    return {"command": " ".join(cmd), "exit_status": status, "counts": counts, "tests": outcomes}


def parse_junit(path: Path) -> dict[str, str]:
    """{test id: "passed" | "failed" | "error" | "skipped"} from a pytest JUnit XML file."""
    outcomes = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        tags = {child.tag for child in case}
        outcomes[name] = next((t for t in ("failure", "error", "skipped") if t in tags), "passed")
        outcomes[name] = {"failure": "failed"}.get(outcomes[name], outcomes[name])
    return outcomes


def determinism_step(dry_run: bool) -> dict:
    """Feature gradients of three identical calls, bitwise compared, per impl and mode."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import jax_roialign as jr

    workload = DRY_RUN_WORKLOADS[0] if dry_run else WORKLOADS[1]
    x, boxes, idx = (jnp.asarray(a) for a in workload.arrays())
    g = jnp.asarray(
        np.random.default_rng(1).standard_normal((workload.num_boxes, *(workload.output_size,) * 2, workload.channels)),
        x.dtype,
    )
    results = {"workload": workload.name}
    for impl in ("pallas", "xla"):
        for mode in ("avg", "max"):

            def grad(x, impl=impl, mode=mode):
                def loss(x):
                    kwargs = workload.kwargs() | {"mode": mode}
                    out = jr.roi_align(x, boxes, workload.output_size, batch_indices=idx, impl=impl, **kwargs)
                    return jnp.vdot(out, g)

                return jax.grad(loss)(x)

            compiled = jax.jit(grad).lower(x).compile()
            runs = [np.asarray(compiled(x)) for _ in range(3)]
            results[f"{impl}-{mode}"] = all(np.array_equal(runs[0], r) for r in runs[1:])
    return results


def ideal_bytes(workload: Workload, backward: bool, itemsize: int = 4) -> int:
    """Bytes an ideal kernel moves: every input read once and every output written once.

    Forward: features + boxes and batch indices + output.  Forward+backward adds the
    cotangent read and the features' gradient written.
    """
    boxes = workload.num_boxes * (4 * 4 + 4)
    total = workload.feature_bytes(itemsize) + boxes + workload.output_bytes(itemsize)
    if backward:
        total += workload.output_bytes(itemsize) + workload.feature_bytes(itemsize)
    return total


def hbm_bytes_per_s(device) -> float | None:
    if device.platform == "tpu":
        from jax.experimental.pallas import tpu as pltpu

        info = pltpu.get_tpu_info()
        return float(info.mem_bw_bytes_per_second * info.num_cores)
    return HBM_BYTES_PER_S.get(device.device_kind)


def _time_jax(workload: Workload, impl: str, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import jax_roialign as jr
    from jax_roialign.tools.bench.timing import median_seconds

    x, boxes, idx = (jnp.asarray(a) for a in workload.arrays())
    g = jnp.asarray(
        np.random.default_rng(1).standard_normal((workload.num_boxes, *(workload.output_size,) * 2, workload.channels)),
        x.dtype,
    )

    def pool(x):
        return jr.roi_align(x, boxes, workload.output_size, batch_indices=idx, impl=impl, **workload.kwargs())

    start = time.perf_counter()
    forward = jax.jit(pool).lower(x).compile()
    backward = jax.jit(jax.grad(lambda x: jnp.vdot(pool(x), g))).lower(x).compile()
    compile_s = time.perf_counter() - start
    return {
        "forward_ms": 1e3 * median_seconds(lambda: forward(x).block_until_ready(), repeats),
        "forward_backward_ms": 1e3 * median_seconds(lambda: backward(x).block_until_ready(), repeats),
        "compile_s": round(compile_s, 3),
    }


def _time_torchvision(workload: Workload, repeats: int) -> dict:
    import numpy as np
    import torch
    import torchvision

    from jax_roialign.tools.bench.timing import median_seconds

    device = "cuda" if torch.cuda.is_available() else "cpu"
    x, boxes, idx = workload.arrays()
    feats = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device)
    rois = torch.from_numpy(np.concatenate([idx[:, None].astype(np.float32), boxes], axis=1)).to(device)
    shape = (workload.num_boxes, workload.channels, workload.output_size, workload.output_size)
    g = torch.from_numpy(np.random.default_rng(1).standard_normal(shape).astype(np.float32)).to(device)
    kw = {
        "output_size": workload.output_size,
        "spatial_scale": workload.spatial_scale,
        "sampling_ratio": workload.sampling_ratio if workload.sampling_ratio > 0 else -1,
        "aligned": workload.aligned,
    }

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def forward():
        with torch.no_grad():
            torchvision.ops.roi_align(feats, rois, **kw)
        sync()

    def forward_backward():
        leaf = feats.detach().requires_grad_(True)
        torchvision.ops.roi_align(leaf, rois, **kw).backward(g)
        sync()

    return {
        "device": device,
        "forward_ms": 1e3 * median_seconds(forward, repeats),
        "forward_backward_ms": 1e3 * median_seconds(forward_backward, repeats),
    }


def timings_step(report: Report, dry_run: bool, repeats: int, deadline: float) -> dict:
    """Per workload, per runner: forward and forward+backward milliseconds (saved workload by workload)."""
    import importlib.util

    import jax

    device = jax.devices()[0]
    bandwidth = hbm_bytes_per_s(device)
    have_torchvision = importlib.util.find_spec("torchvision") is not None
    result: dict = {"repeats": repeats, "hbm_bytes_per_s": bandwidth, "workloads": {}}
    report.data["steps"]["timings"] = result
    for workload in DRY_RUN_WORKLOADS if dry_run else WORKLOADS:
        rows: dict = {}
        result["workloads"][workload.name] = rows
        for runner in ("xla", "pallas", "torchvision"):
            if time.monotonic() > deadline:
                rows[runner] = {"skipped": "the time budget is spent"}
                continue
            if runner == "torchvision" and not have_torchvision:
                rows[runner] = {"skipped": "torchvision is not installed"}
                continue
            try:
                rows[runner] = (
                    _time_torchvision(workload, repeats)
                    if runner == "torchvision"
                    else _time_jax(workload, runner, repeats)
                )
            except Exception as e:  # noqa: BLE001
                rows[runner] = {"error": f"{type(e).__name__}: {e}"[:2000]}
            rows[runner].update(roofline(workload, rows[runner], bandwidth))
            report.save()
        print(f"device-check: timed {workload.name}", flush=True)
    return result


def roofline(workload: Workload, times: dict, bandwidth: float | None) -> dict:
    """Fraction of the memory roofline each time reaches: ideal bytes / bandwidth / time."""
    out = {}
    for key, backward in (("forward_ms", False), ("forward_backward_ms", True)):
        if bandwidth and key in times:
            ideal_s = ideal_bytes(workload, backward) / bandwidth
            out[key.replace("_ms", "_roofline")] = round(ideal_s / (times[key] / 1e3), 4)
    return out


def verdict(data: dict) -> dict:
    """Correct and faster than XLA everywhere?  The reasons when not."""
    steps = data["steps"]
    reasons = []
    if data["dry_run"]:
        reasons.append("a dry run verifies nothing")
    tests = steps.get("kernel_tests", {})
    counts = tests.get("counts", {})
    if tests.get("exit_status") != 0 or counts.get("failed") or counts.get("error") or not counts.get("passed"):
        reasons.append(f"kernel tests: exit status {tests.get('exit_status')}, {counts}")
    det = steps.get("determinism", {})
    if not all(det.get(f"pallas-{m}") is True for m in ("avg", "max")):
        reasons.append(f"pallas feature gradient not bitwise deterministic: {det}")
    speedups = {}
    for name, rows in steps.get("timings", {}).get("workloads", {}).items():
        xla, pallas = rows.get("xla", {}), rows.get("pallas", {})
        for key in ("forward_ms", "forward_backward_ms"):
            if key not in xla or key not in pallas:
                reasons.append(f"{name}: no {key} for xla and pallas")
                continue
            speedups[f"{name}:{key}"] = round(xla[key] / pallas[key], 3)
    slower = {k: v for k, v in speedups.items() if v <= 1.0}
    if slower:
        reasons.append(f"pallas not faster than xla on {slower}")
    if not speedups:
        reasons.append("no timings")
    return {"verified": not reasons, "reasons": reasons, "pallas_speedup_over_xla": speedups}


def verified_table(data: dict, previous: dict) -> dict:
    """The device table with this run's device kind added (verified) or removed (not)."""
    table = {"description": previous.get("description", ""), "devices": dict(previous.get("devices", {}))}
    env = data["steps"].get("environment", {})
    kind = env.get("device_kind")
    if kind is None or data["dry_run"]:
        return table
    verdict_ = data["steps"].get("verdict", {})
    if verdict_.get("verified"):
        table["devices"][kind] = {
            "date": env.get("date"),
            "commit": env.get("commit"),
            "source_sha256": env.get("source_sha256"),
            "versions": {k: v for k, v in env.get("versions", {}).items() if k.startswith("jax")},
            "min_speedup_over_xla": min(verdict_["pallas_speedup_over_xla"].values()),
        }
    else:
        table["devices"].pop(kind, None)
    return table


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "device-check")), help="output folder")
    parser.add_argument("--dry-run", action="store_true", help="the same steps, interpreted, on tiny shapes")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per measurement (median)")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for the whole check (default 420)")
    parser.add_argument("--commit", help="the commit of this checkout (default: git rev-parse HEAD, if a git checkout)")
    parser.add_argument(
        "--install-log", type=Path, help="the install step's JSON (written by benchmarks/device_check.py)"
    )


def run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    deadline = start + args.budget
    if args.dry_run:
        import jax

        jax.config.update("jax_disable_most_optimizations", True)  # interpreted kernels compile faster
    report = Report(args.out, args.dry_run)
    if args.install_log and args.install_log.exists():
        report.data["steps"]["install"] = json.loads(args.install_log.read_text())
    report.step("environment", lambda: environment_step(args.commit))
    tests_timeout = 30.0 if args.dry_run else max(60.0, 0.4 * args.budget)
    report.step("kernel_tests", lambda: kernel_tests_step(args.out, args.dry_run, tests_timeout))
    report.step("determinism", lambda: determinism_step(args.dry_run))
    repeats = 2 if args.dry_run else args.repeats
    report.step("timings", lambda: timings_step(report, args.dry_run, repeats, deadline))
    report.step("verdict", lambda: verdict(report.data))
    from jax_roialign.kernels import verified

    previous = json.loads((Path(verified.__file__).parent / verified.TABLE).read_text())
    table = verified_table(report.data, previous)
    (args.out / "verified_devices.json").write_text(json.dumps(table, indent=2) + "\n")
    report.data["total_seconds"] = round(time.monotonic() - start, 1)
    report.save()
    print(json.dumps(report.data["steps"]["verdict"], indent=1))
    print(f"device-check: results in {report.path}, the device table in {args.out / 'verified_devices.json'}")
    return 0
