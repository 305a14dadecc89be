"""Live cross-checks: the conformance cases recomputed by the installed frameworks, then compared.

Each framework is optional: its tests skip when it is not importable (CI installs none
of them; the committed fixtures cover it there).  ``python -m jax_roialign check`` runs
the same cases and prints a summary table instead.
"""

from __future__ import annotations

import pytest

from jax_roialign.tools import conformance
from tests.compat.test_fixtures import assert_all_passed

# RoIAlign's frameworks, then resize's and mask pasting's (chainer runs in the Python that
# JAX_ROIALIGN_CHAINER_PYTHON names).
LIVE = (
    "torchvision",
    "onnxruntime",
    "tensorflow",
    "torch",
    "onnxruntime_resize",
    "tensorflow_resize",
    "opencv",
    "chainer",
)


def live_cases() -> list:
    params = []
    for name in LIVE:
        framework = conformance.FRAMEWORKS[name]
        if not framework.available():
            reason = f"needs {', '.join(framework.modules) or 'JAX_ROIALIGN_CHAINER_PYTHON'}"
            params.append(pytest.param(name, None, marks=pytest.mark.skip(reason=reason)))
            continue
        params.extend(pytest.param(name, case, id=f"{name}:{case['name']}") for case in framework.cases())
    return params


@pytest.mark.parametrize("source,case", live_cases())
def test_live(source, case):
    outputs = conformance.FRAMEWORKS[source].run(case)
    assert_all_passed(conformance.compare_case(source, case["params"], {**case["inputs"], **outputs}))
