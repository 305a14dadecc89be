"""Resize and mask pasting against the frameworks' committed fixtures (live runs: tests/compat/test_live.py).

The fixtures (tests/fixtures/{torch, onnxruntime_resize, tensorflow_resize, opencv,
chainer}.npz) are made by tests/fixtures/make_fixtures.py from the cases of
``jax_roialign.tools.conformance.resize``; each case runs the compat twin (forward, and
the input gradient where the framework has one) and compares with
``conformance.compare_case``: float outputs to float rounding, integer outputs exactly
(OpenCV's uint8 INTER_CUBIC within 1, the IPP path of its wheels), dtypes equal.
"""

from __future__ import annotations

import numpy as np
import pytest

from jax_roialign.tools import conformance
from tests.compat.test_fixtures import assert_all_passed, load_cases

SOURCES = ("torch", "onnxruntime_resize", "tensorflow_resize", "opencv", "chainer")
FIXTURE_CASES = [pytest.param(src, p, a, id=f"{src}:{n}") for src in SOURCES for n, p, a in load_cases(src)]


def test_every_resize_source_has_fixtures():
    assert {p.values[0] for p in FIXTURE_CASES} == set(SOURCES)


@pytest.mark.parametrize("source", SOURCES)
def test_fixtures_hold_the_conformance_cases(source):
    """The committed files hold exactly the cases conformance builds now, with every op (regenerate if not)."""
    stored = {name: (params, arrays) for name, params, arrays in load_cases(source)}
    cases = conformance.FRAMEWORKS[source].cases()
    assert sorted(c["name"] for c in cases) == sorted(stored)
    assert {c["params"]["op"] for c in cases} == set(conformance.FRAMEWORKS[source].ops)
    for case in cases:
        params, arrays = stored[case["name"]]
        assert params == case["params"], case["name"]
        for field, value in case["inputs"].items():
            np.testing.assert_array_equal(arrays[field], value, err_msg=f"{case['name']}.{field}")
            assert arrays[field].dtype == value.dtype, f"{case['name']}.{field}"


@pytest.mark.parametrize("source,params,arrays", FIXTURE_CASES)
def test_fixture(source, params, arrays):
    assert_all_passed(conformance.compare_case(source, params, arrays))


def test_a_wrong_output_fails():
    """The comparison is not vacuous: one uint8 value off by 1, or a float32 one off by 1e-3, fails."""
    name, params, arrays = next(c for c in load_cases("onnxruntime_resize") if c[0].endswith(".u8"))
    wrong = dict(arrays, output=arrays["output"].copy())
    wrong["output"].flat[0] ^= 1
    assert not all(f.passed for f in conformance.compare_case("onnxruntime_resize", params, wrong)), name
    name, params, arrays = next(c for c in load_cases("torch") if c[1]["op"] == "interpolate")
    wrong = dict(arrays, output=arrays["output"] + np.float32(1e-2))
    assert not all(f.passed for f in conformance.compare_case("torch", params, wrong)), name
