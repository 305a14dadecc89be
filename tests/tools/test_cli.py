"""The command line: the subcommand table, --help, demo's numbers and check's table and exit status."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from jax_roialign.tools import cli, conformance, demo
from tests.compat.test_fixtures import load_cases


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``jax-roialign *argv``, argparse's exits included."""
    try:
        status = cli.main(list(argv))
    except SystemExit as exit:
        status = exit.code
    out, err = capsys.readouterr()
    return status, out, err


def test_help_lists_every_subcommand(capsys):
    status, out, _ = run_cli(capsys, "--help")
    assert status == 0
    for command in cli.SUBCOMMANDS:
        assert command.name in out


@pytest.mark.parametrize("command", [c.name for c in cli.SUBCOMMANDS])
def test_every_subcommand_has_help(capsys, command):
    status, out, _ = run_cli(capsys, command, "--help")
    assert status == 0
    assert out.startswith(f"usage: jax-roialign {command}")


def test_unknown_subcommand_is_a_usage_error(capsys):
    status, _, err = run_cli(capsys, "frobnicate")
    assert status == 2
    assert "invalid choice: 'frobnicate'" in err


def test_bad_flag_value_names_flag_and_value(capsys):
    status, _, err = run_cli(capsys, "demo", "--per-row", "0")
    assert status == 2
    assert "--per-row" in err and "'0'" in err


def assert_shown(out: str, grid: np.ndarray, times: int) -> None:
    """Every row of the 4 x 4 grid appears in out as demo prints it, once per convention giving it."""
    lines = demo.format_grid(grid)
    for line in lines:
        assert out.count(line) == times * lines.count(line), line


def corner_max(y: float, x: float) -> float:
    """onnxruntime's max at (y, x) on the map 10 * row + col: the largest weighted corner term."""
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    weights = {(0, 0): (1 - ly) * (1 - lx), (0, 1): (1 - ly) * lx, (1, 0): ly * (1 - lx), (1, 1): ly * lx}
    return max(w * (10 * (y0 + dy) + x0 + dx) for (dy, dx), w in weights.items())


def test_demo_prints_each_convention_with_its_numbers(capsys):
    """The map is linear (10 * row + col), so a bilinear read at (y, x) is 10 y + x exactly.

    The 2 x 2 box cut in 4 x 4 bins of 0.5 with one centred sample puts the samples at
    1.25, 1.75, 2.25, 2.75 (legacy) or 0.5 lower (half-pixel); TensorFlow samples the box
    (1, 3) corner-aligned at 1 + 2i/3.
    """
    status, out, _ = run_cli(capsys, "demo")
    assert status == 0
    for convention in demo.CONVENTIONS:
        assert convention.name in out and convention.flags in out
    legacy = 1.25 + 0.5 * np.arange(4)
    half_pixel = legacy - 0.5
    corner = 1 + 2 * np.arange(4) / 3
    assert_shown(out, 10 * legacy[:, None] + legacy, 4)  # torchvision, Caffe2, ONNX-10, ONNX-16 output_half_pixel
    assert_shown(out, 10 * half_pixel[:, None] + half_pixel, 5)  # torchvision/D2/mmcv avg and max, ONNX-16
    assert_shown(out, 10 * corner[:, None] + corner, 1)
    assert_shown(out, np.array([[corner_max(y, x) for x in half_pixel] for y in half_pixel]), 1)
    # Rotated by a quarter turn about the box centre (1.5, 1.5) on the map: the half-pixel sample
    # (yy, xx) of the box frame reads y = 1.5 - xx, x = 1.5 + yy counter-clockwise (+90 degrees)
    # and y = 1.5 + xx, x = 1.5 - yy clockwise, so rows of the output run along map columns.
    frame = half_pixel - 1.5  # -0.75, -0.25, 0.25, 0.75
    assert_shown(out, np.array([[10 * (1.5 - xx) + 1.5 + yy for xx in frame] for yy in frame]), 1)
    assert_shown(out, np.array([[10 * (1.5 + xx) + 1.5 - yy for xx in frame] for yy in frame]), 1)


# --- check, with frameworks replaced so that the test is the same with or without them installed ---

STORED = {name: (params, arrays) for name, params, arrays in load_cases("tensorflow")}
CASE = "crop_and_resize.bilinear.crop1x4.extrap0.f32"


def stored_outputs(case: conformance.Case) -> dict[str, np.ndarray]:
    """The committed TensorFlow outputs of case: a stand-in for running TensorFlow."""
    _, arrays = STORED[case["name"]]
    return {k: arrays[k] for k in ("output", "grad_image", "grad_boxes")}


def stand_in(run) -> conformance.Framework:
    """The tensorflow framework, available (it needs numpy only), with one case and the given runner."""
    (case,) = [c for c in conformance.cases.tensorflow_cases() if c["name"] == CASE]
    framework = conformance.FRAMEWORKS["tensorflow"]
    return dataclasses.replace(framework, modules=("numpy",), cases=lambda: [case], run=run)


def test_check_reports_missing_frameworks_and_exits_0(capsys, monkeypatch, tmp_path):
    missing = {
        name: dataclasses.replace(f, modules=("jax_roialign_no_such_module",))
        for name, f in conformance.FRAMEWORKS.items()
    }
    monkeypatch.setattr(conformance.runners, "FRAMEWORKS", missing)
    status, out, _ = run_cli(capsys, "check", "--json", str(tmp_path / "check.json"))
    assert status == 0
    for f in missing.values():
        for op in f.ops:
            assert f"| {f.name} | {op} | not installed |" in out
    report = json.loads((tmp_path / "check.json").read_text())
    assert report["passed"] and not any(row["installed"] for row in report["rows"])


def test_check_passes_against_the_frameworks_numbers(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(conformance.runners, "FRAMEWORKS", {"tensorflow": stand_in(stored_outputs)})
    status, out, _ = run_cli(capsys, "check", "--framework", "tensorflow", "--json", str(tmp_path / "c.json"))
    assert status == 0
    assert "| tensorflow | crop_and_resize | 1/1 |" in out
    (row,) = json.loads((tmp_path / "c.json").read_text())["rows"]
    assert row["passed"] == row["total"] == 1 and row["max_rel"] < 1e-5


def off_by_1e3(case: conformance.Case) -> dict[str, np.ndarray]:
    outputs = stored_outputs(case)
    return {**outputs, "output": outputs["output"] + 1e-3}


def raising(case: conformance.Case) -> dict[str, np.ndarray]:
    raise RuntimeError("kernel not registered")


@pytest.mark.parametrize("run,reason", [(off_by_1e3, "output max abs 0.001"), (raising, "kernel not registered")])
def test_check_fails_on_wrong_numbers_or_errors(capsys, monkeypatch, run, reason):
    monkeypatch.setattr(conformance.runners, "FRAMEWORKS", {"tensorflow": stand_in(run)})
    status, out, _ = run_cli(capsys, "check")
    assert status == 1
    assert "| tensorflow | crop_and_resize | 0/1 |" in out
    assert f"tensorflow crop_and_resize: {CASE}: " in out and reason in out
