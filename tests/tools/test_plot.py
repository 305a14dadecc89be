"""The conventions figure: drawn samples are the library's, PNG output, flags and errors."""

from __future__ import annotations

import argparse
import importlib.util
import math
import pathlib
import struct
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from jax_roialign.core import sampling
from jax_roialign.tools.plot import command, figure
from jax_roialign.tools.plot import scene as plot_scene

pytest.importorskip("matplotlib")

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "conventions.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OUTSIDE_BOX = (-3.0, -2.0, 4.0, 8.0)  # reaches past the map's top, left and bottom


@pytest.fixture(scope="module")
def default_figure():
    return figure.conventions_figure()


@pytest.fixture(scope="module")
def outside_figure():
    # Same output size, ratio and scale as the default, so the compiled calls are reused.
    return figure.conventions_figure(OUTSIDE_BOX)


def _axes(fig) -> dict:
    return {ax.get_label(): ax for ax in fig.axes}


def _drawn(ax, gid: str) -> list:
    return [a for a in (*ax.collections, *ax.patches) if a.get_gid() == gid]


def _points(ax, gid: str) -> np.ndarray:
    """(x, y) offsets of the scatter(s) with this gid, sorted row-major, (S, 2)."""
    found = [np.asarray(c.get_offsets(), np.float64).reshape(-1, 2) for c in _drawn(ax, gid)]
    points = np.concatenate(found) if found else np.zeros((0, 2))
    return points[np.lexsort((points[:, 0], points[:, 1]))]


def _grid(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    gx, gy = np.meshgrid(np.ravel(xs), np.ravel(ys))
    points = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float64)
    return points[np.lexsort((points[:, 0], points[:, 1]))]


def _library_axis(lo: float, hi: float, aligned: bool, pooled: int = 2, ratio: int = 2) -> np.ndarray:
    """Sample coordinates of one axis straight from the sampling module, (pooled * grid,)."""
    bins = sampling.axis_bins(
        jnp.float32(lo), jnp.float32(hi), spatial_scale=1.0, aligned=aligned, pooled=pooled, sampling_ratio=ratio
    )
    p = jnp.arange(pooled, dtype=jnp.float32)[:, None]
    i = jnp.arange(int(bins.grid), dtype=jnp.float32)[None, :]
    return np.asarray(sampling.sample_coordinate(bins, p, i)).ravel()


def _tf_axis(lo: float, hi: float, crop: int = 2, length: int = 6) -> np.ndarray:
    coords, _ = sampling.crop_axis_coordinates(
        jnp.float32([lo / (length - 1)]), jnp.float32([hi / (length - 1)]), crop, length
    )
    return np.asarray(coords).ravel()


def test_default_samples_are_the_hand_computed_ones(default_figure):
    # conventions.md section 1 for box (1, 1, 3, 3), scale 1, 2x2 bins of 2x2 samples:
    # aligned: start 1 - 0.5, bin 1, samples 0.5 + p + (i + 0.5) / 2; legacy: start 1.
    # Section 4 for TF with the box over (size - 1) = 5: samples at 0.2*5 + i*0.4*5 = 1, 3.
    aligned, legacy, tf = [0.75, 1.25, 1.75, 2.25], [1.25, 1.75, 2.25, 2.75], [1.0, 3.0]
    want = {"aligned": aligned, "legacy": legacy, "corner_max": aligned, "crop_and_resize": tf}
    axes = _axes(default_figure)
    assert set(want) <= set(axes)
    for key, coords in want.items():
        np.testing.assert_allclose(_points(axes[key], "samples"), _grid(coords, coords), err_msg=key)
        assert not _drawn(axes[key], "samples-outside")
    for key, edges in (("aligned", [0.5, 1.5, 2.5]), ("legacy", [1.0, 2.0, 3.0])):
        vertical, horizontal = _drawn(axes[key], "bin-edges")
        np.testing.assert_allclose(sorted({s[0][0] for s in vertical.get_segments()}), edges)
        np.testing.assert_allclose(sorted({s[0][1] for s in horizontal.get_segments()}), edges)


def test_drawn_samples_equal_the_sampling_module(outside_figure):
    x1, y1, x2, y2 = OUTSIDE_BOX
    axes = _axes(outside_figure)
    for key, aligned in (("aligned", True), ("legacy", False), ("corner_max", True)):
        ys, xs = _library_axis(y1, y2, aligned), _library_axis(x1, x2, aligned)
        assert not np.array_equal(ys, xs)  # an x/y swap in the drawing would show
        inside = _grid(ys[(ys >= -1) & (ys <= 6)], xs[(xs >= -1) & (xs <= 6)])  # read rule: [-1, size]
        drawn = np.concatenate([_points(axes[key], "samples"), _points(axes[key], "samples-outside")])
        np.testing.assert_array_equal(drawn[np.lexsort((drawn[:, 0], drawn[:, 1]))], _grid(ys, xs), err_msg=key)
        np.testing.assert_array_equal(_points(axes[key], "samples"), inside, err_msg=key)
    ys, xs = _tf_axis(y1, y2), _tf_axis(x1, x2)
    inside = _grid(ys[(ys >= 0) & (ys <= 5)], xs[(xs >= 0) & (xs <= 5)])  # else extrapolation_value
    np.testing.assert_array_equal(_points(axes["crop_and_resize"], "samples"), inside)
    assert len(_points(axes["crop_and_resize"], "samples-outside")) == len(ys) * len(xs) - len(inside) > 0


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("ratio", [2, 0])
def test_axis_samples_follow_conventions_md(aligned, ratio):
    # A scaled, rectangular, possibly adaptive scene, against section 1 written out in float64.
    scene = plot_scene.make_scene((-3.0, 0.5, 4.0, 7.0), (3, 2), ratio, 0.75)
    for lo, hi, pooled in ((0.5, 7.0, 3), (-3.0, 4.0, 2)):
        off = 0.5 if aligned else 0.0
        start = lo * 0.75 - off
        size = hi * 0.75 - off - start if aligned else max(hi * 0.75 - off - start, 1.0)
        bin_size = size / pooled
        grid = ratio if ratio > 0 else math.ceil(size / pooled)
        want = np.array(
            [[start + p * bin_size + (i + 0.5) * bin_size / grid for i in range(grid)] for p in range(pooled)]
        )
        got = plot_scene.roi_align_axis(lo, hi, 6, pooled, scene, aligned)
        np.testing.assert_allclose(got.coords, want, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(got.valid, (got.coords >= -1) & (got.coords <= 6))
        np.testing.assert_allclose(got.edges, start + np.arange(pooled + 1) * bin_size, rtol=0, atol=1e-5)


def test_panels_put_output_height_on_rows(monkeypatch):
    # Geometry only: the pooled values are checked on the default figure (their compilation
    # for another output size would cost seconds).
    monkeypatch.setattr(plot_scene, "first_bin", lambda *args, **kwargs: 0.0)
    scene = plot_scene.make_scene((0.0, 1.0, 4.0, 3.0), (3, 2), 2, 1.0)
    aligned, legacy, _, tf = plot_scene.panels(scene)
    for panel, flag in ((aligned, True), (legacy, False)):
        np.testing.assert_array_equal(panel.y.coords.ravel(), _library_axis(1.0, 3.0, flag, pooled=3))
        np.testing.assert_array_equal(panel.x.coords.ravel(), _library_axis(0.0, 4.0, flag, pooled=2))
    np.testing.assert_array_equal(tf.y.coords.ravel(), _tf_axis(1.0, 3.0, crop=3))
    np.testing.assert_array_equal(tf.x.coords.ravel(), _tf_axis(0.0, 4.0, crop=2))


def test_crop_axis_follows_conventions_md():
    got = plot_scene.crop_axis(-0.3, 0.9, 4, 6)
    want = -0.3 * 5 + np.arange(4) * 1.2 * 5 / 3  # section 4: y1 (H-1) + i (y2-y1)(H-1)/(crop-1)
    np.testing.assert_allclose(got.coords.ravel(), want, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(got.valid.ravel(), (want >= 0) & (want <= 5))
    assert got.edges is None


def test_first_bin_values_and_corner_terms(default_figure):
    # By hand on X = 10 row + col (linear, so a bilinear read of (y, x) is 10y + x):
    # aligned: mean of 10y + x over y, x in {0.75, 1.25} = 11; legacy over {1.25, 1.75} = 16.5;
    # TF: X[1, 1] = 11; onnxruntime: the largest corner term is 0.75 * 0.75 * X[1, 1] = 6.1875.
    want = {"aligned": 11.0, "legacy": 16.5, "corner_max": 6.1875, "crop_and_resize": 11.0}
    for key, ax in _axes(default_figure).items():
        if key in want:
            assert any(t.get_text().endswith(f"out[0, 0] = {want[key]:g}") for t in ax.texts), key
    ax = _axes(default_figure)["corner_max"]
    (taps,) = _drawn(ax, "taps")
    segments = np.asarray(taps.get_segments())  # (T, 2, 2): sample -> corner pixel centre
    first_bin = _grid([0.75, 1.25], [0.75, 1.25])
    assert {tuple(s) for s in segments[:, 0]} == {tuple(p) for p in first_bin}
    assert np.all(np.abs(segments[:, 1] - segments[:, 0]) < 1) and np.all(segments[:, 1] == np.round(segments[:, 1]))
    terms = plot_scene.panels(plot_scene.make_scene())[2].corner_terms
    for point in first_bin:  # four corners per sample, weights summing to 1
        mine = np.all(terms.samples == point, axis=1)
        assert mine.sum() == 4 and math.isclose(float(terms.weights[mine].sum()), 1.0)
    (star,) = _drawn(ax, "max-term")
    np.testing.assert_array_equal(star.get_offsets(), [[1, 1]])
    assert float(terms.terms.max()) == 6.1875


def test_rotated_panels_turn_the_box_about_its_centre(default_figure):
    """The default box as centre (1.5, 1.5) on the map, half sizes 1, 2 x 2 bins of 2 x 2 samples, turned by
    +30 degrees (counter-clockwise on screen) and with clockwise=True (turned by -30)."""
    axes = _axes(default_figure)
    frame = -1.0 + np.array([0.25, 0.75, 1.25, 1.75])  # box-frame coordinates of the samples, per axis
    yy, xx = (a.ravel() for a in np.meshgrid(frame, frame, indexing="ij"))
    for key, degrees in (("rotated", 30.0), ("rotated_clockwise", -30.0)):
        cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
        want = np.stack([yy * sin + xx * cos + 1.5, yy * cos - xx * sin + 1.5], axis=1)  # (x, y)
        np.testing.assert_allclose(_points(axes[key], "samples"), want[np.lexsort((want[:, 0], want[:, 1]))], atol=1e-6)
        # The map is linear (10 row + col) and the first bin's samples are symmetric about its centre (-0.5, -0.5).
        value = 10 * (-0.5 * cos + 0.5 * sin + 1.5) + (-0.5 * sin - 0.5 * cos + 1.5)
        assert any(t.get_text().endswith(f"out[0, 0] = {value:.6g}") for t in axes[key].texts), key
    negated = plot_scene.rotated_panel(plot_scene.make_scene(angle=-30.0), clockwise=False)
    clockwise = plot_scene.rotated_panel(plot_scene.make_scene(), clockwise=True)
    # Equal to float32 rounding: the two programs may contract multiply-adds differently.
    np.testing.assert_allclose(negated.samples, clockwise.samples, atol=1e-6)
    assert math.isclose(negated.first_value, clockwise.first_value, abs_tol=1e-5)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jax-roialign plot")
    command.configure_parser(parser)
    return parser


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_example_runs_the_plot_command_and_writes_a_png(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("conventions_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.README_FIGURE.parts[-2:] == ("docs", "conventions.png")
    path = tmp_path / "figs" / "mine.png"
    assert example.main(["--output", str(path), "--box", "0,1,3,3"]) == 0  # configure_parser + run
    data = path.read_bytes()
    width, height = _png_size(data)
    assert width > 1000 and height > 1000 and len(data) > 50_000
    assert str(path) in capsys.readouterr().out


def test_flags_are_parsed():
    args = _parser().parse_args(
        ["--box=-1,0.5,3,4", "--output-size", "3,2", "--sampling-ratio", "0", "--spatial-scale", "0.5"]
    )
    assert (args.box, args.output_size, args.sampling_ratio, args.spatial_scale) == ((-1, 0.5, 3, 4), (3, 2), 0, 0.5)
    assert args.angle == 30.0 and _parser().parse_args(["--angle=-45"]).angle == -45.0
    assert args.output == pathlib.Path("conventions.png")
    assert _parser().parse_args(["--output-size", "4"]).output_size == (4, 4)


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--box", "1,2,3"], "argument --box: box must be four numbers"),
        (["--box", "1,1,nan,3"], "argument --box: box must be finite"),
        (["--box", "3,1,1,3"], "argument --box: box must have x1 <= x2"),
        (["--box", "1,a,3,3"], "argument --box: box must be comma-separated floats"),
        (["--output-size", "0"], "argument --output-size: output-size must be >= 1"),
        (["--output-size", "2,3,4"], "argument --output-size: output-size must be an int or a pair"),
        (["--sampling-ratio", "1.5"], "argument --sampling-ratio: sampling-ratio must be one int"),
        (["--spatial-scale", "0"], "argument --spatial-scale: spatial-scale must be finite and > 0"),
        (["--spatial-scale", "inf"], "argument --spatial-scale: spatial-scale must be finite and > 0"),
        (["--output", "fig.jpg"], "argument --output: output must be a .png path"),
        (["--angle", "nan"], "argument --angle: angle must be finite"),
    ],
)
def test_bad_flags_are_clear_errors(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(flags)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_too_many_samples_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "big.png"
    assert command.run(_parser().parse_args(["--output", str(path), "--output-size", "40"])) == 2
    err = capsys.readouterr().err
    assert "must be <= 64 samples per axis" in err and "got 40 x 2" in err
    assert not path.exists()


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"box": (1, 2, 3)}, ValueError, "box"),
        ({"box": "abcd"}, TypeError, "box"),
        ({"output_size": 0}, ValueError, "output_size"),
        ({"sampling_ratio": 1.5}, TypeError, "sampling_ratio"),
        ({"spatial_scale": -1.0}, ValueError, "spatial_scale"),
        ({"angle": float("inf")}, ValueError, "angle"),
    ],
)
def test_figure_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        figure.conventions_figure(**kwargs)


def test_imports_without_matplotlib_and_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # makes importing it raise ImportError
    # A fresh copy of the module: its body must not import matplotlib.
    spec = importlib.util.spec_from_file_location("figure_without_matplotlib", figure.__file__)
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    with pytest.raises(ImportError, match=r'pip install "jax-roialign\[viz\]"'):
        fresh.conventions_figure()
