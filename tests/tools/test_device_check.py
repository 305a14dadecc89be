"""The device check: its dry run end to end (the same steps, interpreted, tiny), and its verdict logic."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from jax_roialign.kernels import verified

from jax_roialign.tools import device_check

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_dry_run_runs_every_step_and_verifies_nothing(tmp_path):
    done = subprocess.run(
        [sys.executable, "benchmarks/device_check.py", "--dry-run", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((tmp_path / "device_check.json").read_text())
    steps = data["steps"]
    assert list(steps) == ["environment", "kernel_tests", "determinism", "timings", "verdict"]
    assert not any("error" in step for step in steps.values()), steps
    assert steps["environment"]["device_kind"] and len(steps["environment"]["source_sha256"]) == 64
    tests = steps["kernel_tests"]
    assert tests["exit_status"] == 0 and tests["counts"]["passed"] == len(tests["tests"]) > 0
    assert all(steps["determinism"][f"{impl}-{mode}"] is True for impl in ("pallas", "xla") for mode in ("avg", "max"))
    for rows in steps["timings"]["workloads"].values():
        for impl in ("xla", "pallas"):
            assert rows[impl]["forward_ms"] > 0 and rows[impl]["forward_backward_ms"] > 0
    assert steps["verdict"]["verified"] is False and "a dry run verifies nothing" in steps["verdict"]["reasons"]
    table = json.loads((tmp_path / "verified_devices.json").read_text())
    assert table["devices"] == verified.verified_devices()  # a dry run changes no entry


def _run(passed=3, failed=0, deterministic=True, xla_ms=2.0, pallas_ms=1.0, dry_run=False) -> dict:
    timings = {
        "w": {
            "xla": {"forward_ms": xla_ms, "forward_backward_ms": 4 * xla_ms},
            "pallas": {"forward_ms": pallas_ms, "forward_backward_ms": 4 * pallas_ms},
        }
    }
    counts = {"passed": passed, **({"failed": failed} if failed else {})}
    return {
        "dry_run": dry_run,
        "steps": {
            "environment": {"device_kind": "NVIDIA H200", "date": "d", "commit": "c", "versions": {"jax": "0.11"}},
            "kernel_tests": {"exit_status": 1 if failed else 0, "counts": counts},
            "determinism": {"pallas-avg": deterministic, "pallas-max": True},
            "timings": {"workloads": timings},
        },
    }


def test_verdict_needs_passing_tests_determinism_and_speed():
    assert device_check.verdict(_run())["verified"]
    assert device_check.verdict(_run())["pallas_speedup_over_xla"] == {
        "w:forward_ms": 2.0,
        "w:forward_backward_ms": 2.0,
    }
    for bad in (_run(failed=1), _run(passed=0), _run(deterministic=False), _run(pallas_ms=2.0), _run(dry_run=True)):
        result = device_check.verdict(bad)
        assert not result["verified"] and result["reasons"]


def test_verified_table_adds_and_removes_the_device_kind():
    empty = {"description": "t", "devices": {}}
    run = _run()
    run["steps"]["verdict"] = device_check.verdict(run)
    table = device_check.verified_table(run, empty)
    assert table["devices"]["NVIDIA H200"]["min_speedup_over_xla"] == 2.0
    slower = _run(pallas_ms=3.0)
    slower["steps"]["verdict"] = device_check.verdict(slower)
    assert device_check.verified_table(slower, table)["devices"] == {}


def test_ideal_bytes_reads_and_writes_each_array_once():
    w = device_check.WORKLOADS[0]
    forward = w.feature_bytes() + w.num_boxes * 20 + w.output_bytes()
    assert device_check.ideal_bytes(w, backward=False) == forward
    assert device_check.ideal_bytes(w, backward=True) == forward + w.output_bytes() + w.feature_bytes()
    roof = device_check.roofline(w, {"forward_ms": 1.0}, 1e12)
    assert roof == {"forward_roofline": round(forward / 1e12 / 1e-3, 4)}


def test_the_issue_workloads():
    names = [w.name for w in device_check.WORKLOADS]
    assert names[:8] == [f"box-p{level}-{grid}" for grid in ("sr2", "adaptive") for level in (2, 3, 4, 5)]
    assert all(w.num_boxes == 1024 and w.n == 2 and w.output_size == 7 for w in device_check.WORKLOADS[:8])
    assert [(w.output_size, w.num_boxes) for w in device_check.WORKLOADS[8:]] == [(14, 256), (7, 4096)]


def test_committed_device_table_is_well_formed():
    """Every entry names the run that verified it (what verified_table writes)."""
    for kind, record in verified.verified_devices().items():
        assert kind and {"date", "commit", "source_sha256", "versions", "min_speedup_over_xla"} <= set(record)
        assert record["min_speedup_over_xla"] > 1.0
