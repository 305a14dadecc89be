"""``python -m jax_roialign check``: the conformance cases against every installed framework, as a pass table."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from jax_roialign.tools.conformance import runners
from jax_roialign.tools.conformance.report import CaseResult, Row, check_framework, markdown_table
from jax_roialign.tools.environment import environment


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Flags of ``check``: --framework NAME (repeatable), --json PATH."""
    parser.add_argument(
        "--framework",
        action="append",
        choices=list(runners.FRAMEWORKS),
        help="framework to check against (repeatable; default: all, the missing ones reported as not installed)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows and every case's result here")


def run(args: argparse.Namespace) -> int:
    """Check the chosen frameworks, print the table and failures; 1 if any case failed, else 0."""
    rows: list[Row] = []
    results: dict[str, list[CaseResult]] = {}
    # Always in FRAMEWORKS' order: torch / torchvision imported after TensorFlow segfault in one
    # process (measured: `check --framework tensorflow_resize --framework torch` exited 139).
    chosen = set(args.framework or runners.FRAMEWORKS)
    for name in [name for name in runners.FRAMEWORKS if name in chosen]:
        framework = runners.FRAMEWORKS[name]
        if framework.available():
            print(f"checking {name} ...", file=sys.stderr, flush=True)
        framework_rows, results[name] = check_framework(framework)
        rows.extend(framework_rows)
    print(markdown_table(rows))
    failures = [f"{row.framework} {row.op}: {failure}" for row in rows for failure in row.failures]
    if failures:
        print("\nfailed cases:")
        print("\n".join(f"  {line}" for line in failures))
    if args.json is not None:
        report = {
            "passed": not failures,
            "environment": environment(),
            "rows": [asdict(row) for row in rows],
            "cases": {name: [{**asdict(r), "passed": r.passed} for r in rs] for name, rs in results.items()},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if failures else 0
