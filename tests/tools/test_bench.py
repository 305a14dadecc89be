"""The benchmark harness and its named workloads (numbers are never checked here, only the plumbing)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from jax_roialign.tools.arg_specs import WORKLOADS, Workload
from jax_roialign.tools.bench import command as bench

TINY = Workload("tiny", 2, 12, 14, 3, 6, 3, 1 / 4, 2, 4.0, 20.0)


def test_the_issue_workloads_exist_with_their_shapes():
    p3 = WORKLOADS["fpn-p3-sr2"]
    assert (p3.n, p3.height, p3.width, p3.channels, p3.num_boxes, p3.sampling_ratio) == (2, 100, 136, 256, 512, 2)
    assert WORKLOADS["fpn-p3-adaptive"].sampling_ratio == 0
    assert (WORKLOADS["mask-p2"].height, WORKLOADS["mask-p2"].output_size) == (200, 14)
    assert (WORKLOADS["many-boxes"].num_boxes, WORKLOADS["many-boxes"].channels) == (8192, 64)


def test_workload_arrays_are_seeded_and_inside_the_image():
    x, boxes, idx = TINY.arrays(seed=3)
    x2, boxes2, _ = TINY.arrays(seed=3)
    np.testing.assert_array_equal(boxes, boxes2)
    np.testing.assert_array_equal(x, x2)
    assert x.shape == (2, 12, 14, 3) and boxes.shape == (6, 4) and idx.shape == (6,)
    sides = boxes[:, 2:] - boxes[:, :2]
    assert np.all(sides >= TINY.min_side - 1e-4) and np.all(sides <= TINY.max_side + 1e-4)
    assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= 14 * 4 + 1e-4) and np.all(boxes[:, 3] <= 12 * 4 + 1e-4)
    assert set(idx.tolist()) <= {0, 1}


def test_the_rotated_and_position_sensitive_workloads():
    """Issue 15's workloads: a DOTA-like rotated level and R-FCN's position-sensitive score maps."""
    dota, rfcn = WORKLOADS["dota-rotated-sr2"], WORKLOADS["rfcn-ps-adaptive"]
    assert (dota.op, dota.n, dota.channels, dota.height, dota.width, dota.num_boxes) == (
        "roi_align_rotated",
        1,
        256,
        128,
        128,
        2000,
    )
    assert (dota.output_size, dota.sampling_ratio) == (7, 2)
    assert (rfcn.op, rfcn.channels, rfcn.height, rfcn.width, rfcn.num_boxes, rfcn.output_channels) == (
        "ps_roi_align",
        490,
        63,
        84,
        300,
        10,
    )
    assert WORKLOADS["rfcn-ps-sr2"].sampling_ratio == 2 and rfcn.sampling_ratio == 0
    tiny = Workload("tiny-rotated", 2, 12, 14, 3, 6, 3, 1 / 4, 2, 4.0, 20.0, op="roi_align_rotated")
    x, boxes, _ = tiny.arrays(seed=3)
    corners = TINY.arrays(seed=3)[1]  # the same draws, as corners
    np.testing.assert_allclose(boxes[:, :2], (corners[:, :2] + corners[:, 2:]) / 2, rtol=1e-6)
    np.testing.assert_allclose(boxes[:, 2:4], corners[:, 2:] - corners[:, :2], rtol=1e-5)
    assert boxes.shape == (6, 5) and np.all(np.abs(boxes[:, 4]) <= 90)
    with pytest.raises(ValueError, match="op"):
        Workload("bad", 1, 4, 4, 3, 1, 2, 1.0, 2, 1.0, 2.0, op="roi_pool")
    with pytest.raises(ValueError, match="multiple of output_size"):
        Workload("bad", 1, 4, 4, 3, 1, 2, 1.0, 2, 1.0, 2.0, op="ps_roi_align")


def test_position_sensitive_workload_times_ours_and_skips_peers_without_the_op():
    tiny = Workload("tiny-ps", 1, 10, 12, 18, 5, 3, 1 / 4, 2, 4.0, 30.0, op="ps_roi_align")
    rows = bench.run_workload(tiny, ["xla"], ["onnxruntime", "tensorflow"], threads=1, repeats=1)
    assert set(rows) == {"jax_roialign[xla]"} and rows["jax_roialign[xla]"]["forward_backward_ms"] > 0


@pytest.mark.parametrize("field,value", [("channels", 0), ("num_boxes", -1), ("min_side", 0.0)])
def test_workload_rejects_bad_fields(field, value):
    with pytest.raises(ValueError, match=field):
        Workload(**{**TINY.__dict__, field: value})


def test_run_workload_times_ours_and_reports_memory():
    rows = bench.run_workload(TINY, ["xla"], [], threads=1, repeats=1)
    ours = rows["jax_roialign[xla]"]
    assert ours["forward_ms"] > 0 and ours["forward_backward_ms"] > 0 and ours["compile_s"] > 0
    assert ours["forward_backward_boxes_ms"] > 0
    assert ours["backward_peak_over_floor"] > 0


def test_markdown_table_gives_speedups_over_torchvision():
    results = {
        "workloads": {
            "w": {
                "jax_roialign[xla]": {"forward_ms": 10.0, "forward_backward_ms": 40.0, "compile_s": 1.25},
                "torchvision": {"forward_ms": 30.0, "forward_backward_ms": 100.0},
                "onnxruntime": {"forward_ms": 15.0},
            }
        }
    }
    lines = bench.markdown_table(results).splitlines()
    assert lines[2] == "| w | jax_roialign[xla] | 10 | 40 | 3.0x | 2.5x | 1.2 | - | - |"
    assert lines[3] == "| w | torchvision | 30 | 100 | - | - | - | - | - |"
    assert lines[4] == "| w | onnxruntime | 15 | - | 2.0x | - | - | - | - |"


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.configure_parser(parser)
    return parser.parse_args(argv)


def test_run_writes_json_with_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(bench.WORKLOADS, "tiny", TINY)
    out = tmp_path / "r.json"
    assert bench.run(_args("--workload", "tiny", "--no-peers", "--repeats", "1", "--json", str(out))) == 0
    results = json.loads(out.read_text())
    assert set(results["environment"]) >= {"device", "versions", "commit"}
    assert "| tiny | jax_roialign[xla] |" in capsys.readouterr().out
    assert "tiny" in results["workloads"]
    # --table reprints the saved results without running anything.
    assert bench.run(_args("--table", str(out))) == 0
    assert capsys.readouterr().out.strip() == bench.markdown_table(results)


def test_run_without_json_writes_nothing(tmp_path, monkeypatch, capsys):
    """A quick run from the repository root prints its table and leaves saved results alone."""
    monkeypatch.setitem(bench.WORKLOADS, "tiny", TINY)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    assert bench.run(_args("--workload", "tiny", "--no-peers", "--repeats", "1")) == 0
    assert "| tiny | jax_roialign[xla] |" in capsys.readouterr().out
    assert list(tmp_path.rglob("*.json")) == []


def test_pallas_timings_on_a_cpu_are_refused():
    with pytest.raises(ValueError, match="--impl 'pallas' on a CPU"):
        bench.run(_args("--impl", "pallas", "--no-peers"))


@pytest.mark.parametrize("argv,match", [(("--repeats", "0"), "--repeats"), (("--threads", "0"), "--threads")])
def test_run_rejects_bad_flags(argv, match):
    with pytest.raises(ValueError, match=match):
        bench.run(_args(*argv, "--no-peers"))


def test_scaling_table_gives_time_per_box_over_the_best():
    """Saved sweeps (JSON: string keys) print per-box times and their ratio to the runner's best."""
    from jax_roialign.tools.bench.report import scaling_table

    curves = {"ours": {"64": {"forward_ms": 0.64, "forward_backward_ms": 6.4, "backward_peak_over_floor": 0.8},
                       "128": {"forward_ms": 2.56, "forward_backward_ms": 12.8}}}  # fmt: skip
    rows = scaling_table(curves).splitlines()[2:]
    assert rows == [
        "| ours | 64 | 0.6 | 10.0 | 1.00 | 6.4 | 100.0 | 1.00 | 0.80 |",
        "| ours | 128 | 2.6 | 20.0 | 2.00 | 12.8 | 100.0 | 1.00 | - |",
    ]


def test_our_timings_interleave_the_programs_each_timed_after_an_untimed_call():
    from jax_roialign.tools.bench.timing import interleaved_medians

    calls: list[str] = []
    medians = interleaved_medians({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3)
    assert calls == ["a", "a", "b", "b"] * 3
    assert set(medians) == {"a", "b"} and all(m >= 0 for m in medians.values())


def test_peers_are_timed_call_after_call_after_one_warm_up():
    from jax_roialign.tools.bench.timing import median_seconds

    calls: list[str] = []
    assert median_seconds(lambda: calls.append("a"), repeats=3) >= 0
    assert calls == ["a"] * 4


def test_training_step_returns_the_output_and_the_gradients_of_its_pairing():
    """The timed forward+backward keeps the forward: (fn(x, b), grads of <fn, c> w.r.t. the first n_diff)."""
    import jax
    import jax.numpy as jnp

    from jax_roialign.tools.bench.timing import training_step

    def fn(x, b):
        return jnp.sin(x) * b

    x, b, c = jnp.arange(3.0), jnp.asarray([2.0, -1.0, 0.5]), jnp.asarray([1.0, 3.0, -2.0])
    out, (dx,) = jax.jit(training_step(fn))(c, x, b)
    np.testing.assert_allclose(out, fn(x, b))
    np.testing.assert_allclose(dx, jax.grad(lambda x: jnp.vdot(fn(x, b), c))(x))
    _, (dx2, db) = jax.jit(training_step(fn, 2))(c, x, b)
    np.testing.assert_allclose(dx2, dx)
    np.testing.assert_allclose(db, jax.grad(lambda b: jnp.vdot(fn(x, b), c))(b))


@pytest.mark.parametrize(
    "mode,peers",
    [
        ("avg", {"torchvision", "onnxruntime", "tensorflow"}),
        ("max", {"tensorflow"}),
        ("corner_max", {"onnxruntime"}),
    ],
)
def test_peers_run_the_modes_they_compute(mode, peers):
    from jax_roialign.tools.bench.peers import runs

    workload = Workload(**{**TINY.__dict__, "mode": mode})
    assert {p for p in ("torchvision", "onnxruntime", "tensorflow", "torch") if runs(p, workload)} == peers


def test_results_name_the_commit_and_whether_the_checkout_differs_from_it(monkeypatch):
    """environment()["commit"]: the sha, "-dirty" when the code differs from it (the timed code is
    then not the commit's), "unknown" without git."""
    import re
    import subprocess

    from jax_roialign.tools import environment

    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", environment.git_commit())
    answers = {"rev-parse": "abc\n", "status": " M jax_roialign/ops.py\n"}
    monkeypatch.setattr(
        subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 0, stdout=answers[cmd[1]], stderr="")
    )
    assert environment.git_commit() == "abc-dirty"
    answers["status"] = ""
    assert environment.git_commit() == "abc"
