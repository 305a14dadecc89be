"""Cross-framework agreement: committed fixtures from torchvision, onnxruntime, TensorFlow and ONNX.

The fixtures are made by tests/fixtures/make_fixtures.py from the cases of
jax_roialign.tools.conformance (schema in tests/fixtures/README.md) and compared with
``conformance.compare_case``: float64 to 1e-6 relative, float32 to 1e-5 (plus an
absolute floor scaled by the values), the bounds the design card sets for "equal to
float rounding".
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from jax_roialign.tools import conformance

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
SOURCES = ("torchvision", "onnxruntime", "onnx_backend", "tensorflow")
# Frameworks whose cases are built with numpy alone (onnx_backend's inputs are the onnx package's data).
NUMPY_BUILT = ("torchvision", "onnxruntime", "tensorflow")


def load_cases(source: str) -> list[tuple[str, dict, dict[str, np.ndarray]]]:
    """(name, params, arrays) of every case in tests/fixtures/<source>.npz and <source>.<fixture>.npz."""
    out = []
    for path in sorted([*FIXTURES.glob(f"{source}.npz"), *FIXTURES.glob(f"{source}.*.npz")]):
        out.extend(_load_file(path))
    return sorted(out, key=lambda case: case[0])


def _load_file(path: pathlib.Path) -> list[tuple[str, dict, dict[str, np.ndarray]]]:
    data = np.load(path)
    names = [key[: -len(".params")] for key in data.files if key.endswith(".params")]
    fields: dict[str, dict[str, np.ndarray]] = {name: {} for name in names}
    for key in data.files:
        # Case names and field names both hold dots: a key belongs to the longest case name prefixing it.
        owner = max((n for n in names if key.startswith(n + ".")), key=len)
        fields[owner][key[len(owner) + 1 :]] = data[key]
    out = []
    for name in sorted(names):
        arrays = fields[name]
        params = json.loads(str(arrays.pop("params")))
        out.append((name, params, arrays))
    return out


def assert_all_passed(fields: list[conformance.FieldResult]) -> None:
    """Every compared array within its tolerance (the failures, with their errors, as the message)."""
    failed = [f for f in fields if not f.passed]
    assert not failed, failed


FIXTURE_CASES = [pytest.param(src, p, a, id=f"{src}:{n}") for src in SOURCES for n, p, a in load_cases(src)]


def test_every_source_has_fixtures():
    assert {p.values[0] for p in FIXTURE_CASES} == set(SOURCES)


@pytest.mark.parametrize("source", SOURCES)
def test_fixture_ops_are_the_frameworks_ops(source):
    assert {params["op"] for _, params, _ in load_cases(source)} == set(conformance.FRAMEWORKS[source].ops)


@pytest.mark.parametrize("source", NUMPY_BUILT)
def test_fixtures_hold_the_conformance_cases(source):
    """The committed files were made from exactly the cases conformance builds now (regenerate if not)."""
    stored = {name: (params, arrays) for name, params, arrays in load_cases(source)}
    cases = conformance.FRAMEWORKS[source].cases()
    assert sorted(c["name"] for c in cases) == sorted(stored)
    for case in cases:
        params, arrays = stored[case["name"]]
        assert params == case["params"], case["name"]
        for field, value in case["inputs"].items():
            np.testing.assert_array_equal(arrays[field], value, err_msg=f"{case['name']}.{field}")
            assert arrays[field].dtype == value.dtype, f"{case['name']}.{field}"


@pytest.mark.usefixtures("unoptimized_compiles")
@pytest.mark.parametrize("source,params,arrays", FIXTURE_CASES)
def test_fixture(source, params, arrays):
    assert_all_passed(conformance.compare_case(source, params, arrays))


# Every other case of each (framework, op) on the kernels (interpret mode is slow; the
# kernels are checked against the XLA path on every convention in tests/kernels/).
PALLAS_CASES = [p for p in FIXTURE_CASES if (p.values[0], p.values[1]["op"]) in conformance.SELECTS_IMPL][::2]


@pytest.mark.usefixtures("unoptimized_compiles")
@pytest.mark.parametrize("source,params,arrays", PALLAS_CASES)
def test_fixture_on_the_pallas_kernels(source, params, arrays):
    """The same frameworks' numbers from impl="pallas" (interpret mode on a CPU)."""
    assert_all_passed(conformance.compare_case(source, params, arrays, impl="pallas"))


# Every avg RoIAlign case on the CPU kernels (they pool avg only; ps_roi_align has none).
CPU_CASES = [
    p
    for p in FIXTURE_CASES
    if (p.values[0], p.values[1]["op"]) in conformance.SELECTS_IMPL
    and p.values[1]["op"] == "roi_align"
    and p.values[1].get("mode", "avg") == "avg"
]


@pytest.mark.parametrize("source,params,arrays", CPU_CASES)
def test_fixture_on_the_cpu_kernels(source, params, arrays):
    """The same frameworks' numbers from impl="cpu"."""
    assert_all_passed(conformance.compare_case(source, params, arrays, impl="cpu"))


def test_compare_errors_and_rule():
    theirs = np.array([0.0, 2.0, -4.0])
    inside = conformance.compare("x", theirs + [1e-3, -2e-3, 0.0], theirs, rtol=1e-3, atol=1e-3)
    assert inside.passed
    np.testing.assert_allclose([inside.max_abs, inside.max_rel], [2e-3, 2e-3 / 4])
    # 2.0 may move by atol + rtol * 2 = 3e-3 and no more.
    assert not conformance.compare("x", theirs + [0.0, 3.1e-3, 0.0], theirs, rtol=1e-3, atol=1e-3).passed


def test_compare_nan_and_shape():
    nan = np.array([np.nan, 1.0])
    both = conformance.compare("x", nan, nan, rtol=0.0, atol=0.0)
    assert both.passed and both.max_abs == 0.0
    one_side = conformance.compare("x", np.array([1.0, 1.0]), nan, rtol=1.0, atol=1.0)
    assert not one_side.passed and one_side.max_abs == np.inf
    shape = conformance.compare("x", np.zeros((2, 1)), np.zeros(2), rtol=1.0, atol=1.0)
    assert not shape.passed and shape.max_abs == np.inf
