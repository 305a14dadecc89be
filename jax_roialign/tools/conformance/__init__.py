"""Cross-framework conformance: the cases, the framework runners, the comparisons and the report.

``python -m jax_roialign check`` runs every case against every installed framework and
prints a pass table; ``tests/fixtures/make_fixtures.py`` freezes the frameworks' outputs
of the same cases as the committed fixtures, and the tests compare with those.

- :mod:`~jax_roialign.tools.conformance.cases`: ``Case`` (a unique name, the op's
  JSON-serializable parameters and its input arrays) and the case generators;
- :mod:`~jax_roialign.tools.conformance.runners`: ``FRAMEWORKS``, each a ``Framework``
  with the modules it needs, its ``cases()`` and ``run(case)``;
- :mod:`~jax_roialign.tools.conformance.resize`: the cases and runners of resize and mask
  pasting (torch, onnxruntime, TensorFlow, OpenCV, Chainer);
- :mod:`~jax_roialign.tools.conformance.compare`: ``compare_case``, ours against theirs;
- :mod:`~jax_roialign.tools.conformance.report`: running and summarizing a framework's cases;
- :mod:`~jax_roialign.tools.conformance.command`: the ``check`` command.
"""

from jax_roialign.tools.conformance.cases import Case
from jax_roialign.tools.conformance.compare import SELECTS_IMPL, FieldResult, compare, compare_case
from jax_roialign.tools.conformance.report import CaseResult, Row, check_framework, markdown_table, run_case
from jax_roialign.tools.conformance.runners import FRAMEWORKS, Framework

__all__ = [
    "FRAMEWORKS",
    "SELECTS_IMPL",
    "Case",
    "CaseResult",
    "FieldResult",
    "Framework",
    "Row",
    "check_framework",
    "compare",
    "compare_case",
    "markdown_table",
    "run_case",
]
