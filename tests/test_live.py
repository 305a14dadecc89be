"""Live cross-checks: the fixture cases recomputed by the installed frameworks, then checked.

Each framework's module is optional: its tests skip when it is not importable (CI
installs none of them; the committed fixtures cover it there).
"""

from __future__ import annotations

import importlib.util

import pytest

from tests.fixtures import make_fixtures
from tests.test_fixtures import CHECKS

FRAMEWORKS = {
    "torchvision": ("torchvision", make_fixtures.torchvision_cases, make_fixtures.run_torchvision),
    "onnxruntime": ("onnxruntime", make_fixtures.onnxruntime_cases, make_fixtures.run_onnxruntime),
    "tensorflow": ("tensorflow", make_fixtures.tensorflow_cases, make_fixtures.run_tensorflow),
}


def live_cases() -> list:
    params = []
    for source, (module, cases, _) in FRAMEWORKS.items():
        if importlib.util.find_spec(module) is None:
            params.append(pytest.param(source, None, marks=pytest.mark.skip(reason=f"{module} is not installed")))
            continue
        params.extend(pytest.param(source, case, id=f"{source}:{case['name']}") for case in cases())
    return params


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("source,case", live_cases())
def test_live(source, case):
    run = FRAMEWORKS[source][2]
    arrays = {**case["inputs"], **run(case)}
    CHECKS[source, case["params"]["op"]](case["params"], arrays)
