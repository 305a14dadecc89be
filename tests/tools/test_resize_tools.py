"""demo --resize, plot --resize and the resize / paste bench workloads (plumbing, not timings)."""

from __future__ import annotations

import numpy as np
import pytest

from jax_roialign.core import resize as tables
from jax_roialign.tools.arg_specs import WORKLOADS, PasteWorkload, ResizeWorkload
from jax_roialign.tools.bench import command as bench
from jax_roialign.tools.plot import resize_scene
from tests.tools.test_cli import run_cli


def _rows(out: str, title: str) -> dict[str, list[str]]:
    """{letter: [the lines of that group]} of one table of the demo's output."""
    block = out.split(f"\n{title}\n", 1)[1].split("\n\n", 1)[0]
    groups: dict[str, list[str]] = {}
    for line in block.splitlines():
        groups.setdefault(line.split()[0], []).append(line)
    return groups


def test_demo_prints_the_issue_table_live(capsys):
    status, out, _ = run_cli(capsys, "demo", "--resize")
    assert status == 0
    bilinear = _rows(out, "bilinear")
    assert all(line.endswith("64.00  56.00  40.00  32.00") for line in bilinear["A"])
    assert all(line.endswith("64.00  53.33  42.67  32.00") for line in bilinear["B"])
    assert all(line.endswith("64.00  48.00  32.00  32.00") for line in bilinear["C"])
    assert any("OpenCV" in line for line in bilinear["A"]) and any("Chainer" in line for line in bilinear["B"])
    assert any("Upsample" in line for line in bilinear["C"]) and len(bilinear) == 3
    nearest = _rows(out, "nearest")
    assert any("PyTorch F.interpolate         nearest:" in line for line in nearest["A"])
    assert any("jax.image.resize" in line for line in nearest["B"])


def test_plot_resize_panels_come_from_the_tables():
    panels = {p.key: p for p in resize_scene.resize_panels(3, 5)}
    assert list(panels) == ["half_pixel", "align_corners", "asymmetric", "nearest"]
    np.testing.assert_allclose(panels["half_pixel"].coords, [-0.2, 0.4, 1.0, 1.6, 2.2], rtol=1e-6)
    np.testing.assert_allclose(panels["align_corners"].coords, [0, 0.5, 1, 1.5, 2], rtol=1e-6)
    np.testing.assert_array_equal(panels["nearest"].picked, [0, 0, 1, 1, 2])  # floor(o * 3 / 5)
    np.testing.assert_array_equal(panels["nearest"].other_picked, [0, 0, 1, 2, 2])  # half-pixel rounding
    image = resize_scene.input_map(3)
    np.testing.assert_allclose(
        panels["half_pixel"].first_row, tables.onnx_axis(3, 5, 5 / 3, "linear").matrix() @ image[0]
    )


def test_plot_resize_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "resize.png"
    status, out, _ = run_cli(capsys, "plot", "--resize", "2,4", "--output", str(path))
    assert status == 0 and path.read_bytes().startswith(b"\x89PNG")
    from jax_roialign.tools.plot.resize_figure import resize_figure

    fig = resize_figure(2, 4)
    samples = {ax.get_label(): ax for ax in fig.axes}
    (points,) = [c for c in samples["asymmetric"].collections if c.get_gid() == "samples"]
    np.testing.assert_allclose(np.unique(points.get_offsets()[:, 0]), [0, 0.5, 1, 1.5])


@pytest.mark.parametrize("flag", ["1,4", "2", "2,40", "a,b"])
def test_plot_resize_bad_sizes(flag, capsys):
    status, _, err = run_cli(capsys, "plot", "--resize", flag)
    assert status == 2 and "resize" in err


def test_the_issue_workloads_exist():
    nearest, bilinear, paste = (WORKLOADS[n] for n in ("fpn-upsample-nearest", "fpn-upsample-bilinear", "paste-masks"))
    assert (nearest.op, nearest.n, nearest.channels, nearest.height, nearest.width) == ("resize", 2, 256, 100, 136)
    assert (nearest.out_height, nearest.out_width, bilinear.method) == (200, 272, "bilinear")
    assert (paste.op, paste.num_masks, paste.mask_size, paste.height, paste.width) == (
        "paste_masks",
        100,
        28,
        800,
        1088,
    )


def test_bench_times_resize_and_paste_workloads():
    for workload in (
        ResizeWorkload("tiny-resize", 1, 4, 6, 2, 8, 12, "nearest"),
        PasteWorkload("tiny-paste", 3, 7, 20, 30, 4.0, 12.0),
    ):
        rows = bench.run_workload(workload, ["xla"], ["jax.image"], threads=1, repeats=1)
        ours = rows["jax_roialign"]
        assert ours["forward_ms"] > 0 and ours["forward_backward_ms"] > 0 and ours["compile_s"] > 0
        assert ("jax.image" in rows) == (workload.op == "resize")
