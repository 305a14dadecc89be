"""The per-axis resize tables of every convention (NumPy only: fast, exact)."""

from __future__ import annotations

import numpy as np
import pytest

from jax_roialign.core import resize as tables

ROW = np.array([64.0, 32.0])
F32 = np.float32

# The issue's three rows: 2 pixels [64, 32] upsampled to 4.
HALF_PIXEL = [64.0, 56.0, 40.0, 32.0]
ALIGN_CORNERS = [64.0, 64.0 - 32.0 / 3.0, 32.0 + 32.0 / 3.0, 32.0]
ASYMMETRIC = [64.0, 48.0, 32.0, 32.0]


@pytest.mark.parametrize(
    "table,expected",
    [
        (lambda: tables.onnx_axis(2, 4, 2.0, "linear"), HALF_PIXEL),
        (lambda: tables.onnx_axis(2, 4, 2.0, "linear", "pytorch_half_pixel"), HALF_PIXEL),
        (lambda: tables.torch_axis(2, 4, "bilinear"), HALF_PIXEL),
        (lambda: tables.tf_axis(2, 4, "bilinear", False, True), HALF_PIXEL),
        (lambda: tables.cv2_axis(2, 4, 2.0, "linear", True), HALF_PIXEL),
        (lambda: tables.onnx_axis(2, 4, 2.0, "linear", "align_corners"), ALIGN_CORNERS),
        (lambda: tables.torch_axis(2, 4, "bilinear", align_corners=True), ALIGN_CORNERS),
        (lambda: tables.tf_axis(2, 4, "bilinear", True, False), ALIGN_CORNERS),
        (lambda: tables.chainer_axis(2, 4, "bilinear", True), ALIGN_CORNERS),
        (lambda: tables.onnx_axis(2, 4, 2.0, "linear", "asymmetric"), ASYMMETRIC),
        (lambda: tables.tf_axis(2, 4, "bilinear", False, False), ASYMMETRIC),
    ],
)
def test_the_issue_rows(table, expected):
    np.testing.assert_allclose(table().matrix() @ ROW, expected, rtol=1e-6)


def _float_tables():
    """A table of every float convention over sizes up, down and odd (weights that should sum to 1)."""
    for n, m in ((5, 3), (3, 7), (7, 5), (8, 4), (6, 1), (1, 4)):
        s = float(F32(m) / F32(n))
        for mode in tables.COORDINATE_MODES[:-1]:
            yield tables.onnx_axis(n, m, s, "linear", mode)
            yield tables.onnx_axis(n, m, s, "cubic", mode, exclude_outside=True)
            yield tables.onnx_axis(n, m, s, "cubic", mode, cubic_coeff_a=-0.5, antialias=True)
            yield tables.onnx_axis(n, m, s, "linear", mode, antialias=True, exclude_outside=True)
        for mode in ("bilinear", "bicubic"):
            for flags in ({}, {"align_corners": True}, {"antialias": True}):
                yield tables.torch_axis(n, m, mode, **flags)
        yield tables.torch_axis(n, m, "area")
        for method in ("bilinear", "bicubic", "area"):
            yield tables.tf_axis(n, m, method, False, method != "area")
        for method in tables.TF_KERNELS:
            yield tables.tf_scale_and_translate_axis(n, m, method, True)
        for interpolation in ("linear", "cubic", "area"):
            yield tables.cv2_axis(n, m, m / n, interpolation, True)
        yield tables.chainer_axis(n, m, "bilinear", False)
        yield tables.area_axis(n, m)


def test_interpolating_weights_sum_to_one():
    for table in _float_tables():
        np.testing.assert_allclose(table.weights.sum(axis=1), 1.0, rtol=0, atol=2e-6, err_msg=repr(table.weights))


def test_nearest_modes_at_exact_ties():
    """Asymmetric 2 -> 4 puts outputs 1 and 3 exactly halfway (0.5, 1.5)."""
    expected = {"round_prefer_floor": [0, 0, 1, 1], "round_prefer_ceil": [0, 1, 1, 1], "floor": [0, 0, 1, 1]}
    expected["ceil"] = [0, 1, 1, 1]
    for mode, index in expected.items():
        table = tables.onnx_axis(2, 4, 2.0, "nearest", "asymmetric", mode)
        assert table.is_selection()
        np.testing.assert_array_equal(table.indices()[:, 0], index, err_msg=mode)


def test_onnx_scale_one_copies_whatever_the_mode_and_roi():
    table = tables.onnx_axis(6, 6, 1.0, "linear", "tf_crop_and_resize", roi=(0.3, 0.6))
    assert table.is_identity()
    assert not tables.onnx_axis(6, 6, 1.0000001, "linear", "tf_crop_and_resize", roi=(0.3, 0.6)).is_identity()


def test_tf_crop_and_resize_marks_outside_outputs():
    table = tables.onnx_axis(5, 4, 0.8, "linear", "tf_crop_and_resize", roi=(-0.5, 1.2))
    coords = tables.onnx_coordinates("tf_crop_and_resize", 5, 4, 0.8, (-0.5, 1.2))
    np.testing.assert_array_equal(table.outside, (coords < 0) | (coords > 4))
    assert table.outside.any() and not table.outside.all()


def test_output_sizes():
    assert tables.onnx_output_size(5, 1.7) == 8  # trunc(8.5)
    assert tables.onnx_output_size(10, 0.6) == 6
    assert tables.cv2_output_size((5, 7), None, 1.5, 1.5)[0] == (8, 10)  # 7.5 -> 8, 10.5 -> 10: half to even
    assert tables.cv2_output_size((5, 7), (3, 2), 0, 0) == ((2, 3), 3 / 7, 2 / 5)
    assert tables.tf_preserve_aspect_ratio((5, 7), (10, 10)) == (7, 10)  # 10/7 * 5 = 7.14


def test_torch_nearest_shortcuts():
    np.testing.assert_array_equal(tables.torch_axis(5, 10, "nearest").indices()[:, 0], np.arange(10) >> 1)
    assert tables.torch_axis(5, 5, "nearest").is_identity()
    np.testing.assert_array_equal(tables.torch_axis(3, 5, "nearest").indices()[:, 0], [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(tables.torch_axis(3, 5, "nearest-exact").indices()[:, 0], [0, 0, 1, 2, 2])


def test_onnx_antialias_widens_the_filter():
    """Linear 8 -> 4: the triangle stretched by 2, sampled at the input centres: 1/8, 3/8, 3/8, 1/8."""
    table = tables.onnx_axis(8, 4, 0.5, "linear", antialias=True)
    np.testing.assert_allclose(table.weights[1], [0.125, 0.375, 0.375, 0.125])
    np.testing.assert_array_equal(table.start, [-1, 1, 3, 5])


def test_exclude_outside_drops_the_taps_beyond_the_border():
    table = tables.onnx_axis(4, 8, 2.0, "cubic", exclude_outside=True)
    position = table.start[:, None] + np.arange(table.taps)[None, :]
    assert np.all(table.weights[(position < 0) | (position >= 4)] == 0)
    clamped = tables.onnx_axis(4, 8, 2.0, "cubic")
    assert np.any(clamped.weights[(position < 0) | (position >= 4)] != 0)


def test_area_averages_exact_cells():
    """5 -> 3: cells of 5/3 pixels: [0, 5/3), [5/3, 10/3), [10/3, 5)."""
    m = tables.area_axis(5, 3).matrix()
    third = 1 / (5 / 3)
    np.testing.assert_allclose(m[0], [third, (2 / 3) * third, 0, 0, 0])
    np.testing.assert_allclose(m[1], [0, third / 3, third, third / 3, 0])


def test_torch_uint8_weights_are_int16_with_the_largest_precision():
    for n, m, mode, flags in ((3, 7, "bilinear", {}), (5, 3, "bicubic", {}), (8, 4, "bilinear", {"antialias": True})):
        fixed = tables.torch_uint8_axis(n, m, mode, False, None, flags.get("antialias", False))
        assert 0 < fixed.shift < 22 and np.abs(fixed.q).max() < 2**15
        np.testing.assert_allclose(fixed.q.sum(axis=1), 2**fixed.shift, atol=fixed.q.shape[1])


def test_matrix_table_round_trip():
    m = tables.onnx_axis(7, 3, 3 / 7, "cubic", antialias=True).matrix()
    np.testing.assert_allclose(tables.matrix_table(m).matrix(), m)


@pytest.mark.parametrize(
    "table",
    [
        tables.onnx_axis(100, 200, 2.0, "linear"),
        tables.torch_axis(6, 13, "bilinear", align_corners=True),
        tables.onnx_axis(7, 3, 3 / 7, "cubic", antialias=True),
        tables.onnx_axis(7, 5, 5 / 7, "linear", "tf_crop_and_resize", roi=(-0.2, 1.3)),
        tables.area_axis(10, 3),
        tables.torch_axis(5, 12, "nearest"),
    ],
)
def test_transposed_tables(table):
    """The transposed operator's matrix, clamped reads folded onto the border, outside rows dropped."""
    t = tables.transposed(table)
    assert (t.length, t.size) == (table.size, table.length) and not t.outside.any()
    np.testing.assert_allclose(t.matrix(), table.matrix().T, rtol=1e-15, atol=0)
    assert tables.transposed(t) is table and tables.transposed(table) is t


def test_tables_are_cached_and_read_only():
    """Equal arguments give the same object (a jitted caller compiles once per distinct resize)."""
    a, b = tables.onnx_axis(5, 3, 0.6, "linear"), tables.onnx_axis(5, 3, 0.6, "linear")
    assert a is b and hash(a) == hash(b)
    with pytest.raises(ValueError):
        a.weights[0, 0] = 1.0
