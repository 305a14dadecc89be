"""The check: every case of every installed framework, run, compared and summarized per framework x op."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from jax_roialign.tools.conformance.cases import Case
from jax_roialign.tools.conformance.compare import FieldResult, compare_case
from jax_roialign.tools.conformance.runners import Framework


@dataclass(frozen=True)
class CaseResult:
    """One case run by a framework and compared; error holds the exception if either side raised."""

    name: str
    op: str
    fields: tuple[FieldResult, ...]
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(f.passed for f in self.fields)


def run_case(framework: Framework, case: Case) -> CaseResult:
    """Run case through framework and compare ours with it; an exception becomes a failed result."""
    op = case["params"]["op"]
    try:
        outputs = framework.run(case)
        fields = compare_case(framework.name, case["params"], {**case["inputs"], **outputs})
    except Exception as err:  # a framework version that rejects a case is a finding to report, not a crash
        return CaseResult(case["name"], op, (), f"{type(err).__name__}: {err}")
    return CaseResult(case["name"], op, tuple(fields))


@dataclass(frozen=True)
class Row:
    """One line of the table: a framework's cases of one op.  Errors are None when nothing was compared."""

    framework: str
    op: str
    installed: bool
    versions: str
    passed: int
    total: int
    max_abs: float | None
    max_rel: float | None
    failures: tuple[str, ...]  # "case: what failed"


def _failure(result: CaseResult) -> str:
    if result.error is not None:
        return f"{result.name}: {result.error}"
    bad = [
        f"{f.field} max abs {f.max_abs:.2g} (atol {f.atol:.2g}, rtol {f.rtol:.2g})"
        for f in result.fields
        if not f.passed
    ]
    return f"{result.name}: {'; '.join(bad)}"


def summarize(framework: Framework, op: str, results: Sequence[CaseResult]) -> Row:
    """The row of framework x op from the results of its cases of that op."""
    fields = [f for r in results for f in r.fields]
    return Row(
        framework=framework.name,
        op=op,
        installed=True,
        versions=framework.versions(),
        passed=sum(r.passed for r in results),
        total=len(results),
        max_abs=max((f.max_abs for f in fields), default=None),
        max_rel=max((f.max_rel for f in fields), default=None),
        failures=tuple(_failure(r) for r in results if not r.passed),
    )


def check_framework(framework: Framework) -> tuple[list[Row], list[CaseResult]]:
    """Rows (one per op of framework) and per-case results; rows marked not installed if it is not."""
    if not framework.available():
        row = Row(framework.name, "", False, "", 0, 0, None, None, ())
        return [replace(row, op=op) for op in framework.ops], []
    results = [run_case(framework, case) for case in framework.cases()]
    unknown = {r.op for r in results} - set(framework.ops)
    if unknown:
        raise ValueError(f"{framework.name} has cases of ops {sorted(unknown)} outside its ops {framework.ops}")
    rows = [summarize(framework, op, [r for r in results if r.op == op]) for op in framework.ops]
    return rows, results


def _error_text(value: float | None) -> str:
    return "" if value is None else f"{value:.1e}"


def markdown_table(rows: Sequence[Row]) -> str:
    """The pass table: framework, op, cases passed / total, max abs and relative error, versions."""
    lines = [
        "| framework | op | passed | max abs error | max rel error | versions |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        if not row.installed:
            lines.append(f"| {row.framework} | {row.op} | not installed | | | |")
            continue
        errors = f"{_error_text(row.max_abs)} | {_error_text(row.max_rel)}"
        lines.append(f"| {row.framework} | {row.op} | {row.passed}/{row.total} | {errors} | {row.versions} |")
    return "\n".join(lines)
