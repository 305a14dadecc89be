"""``python -m jax_roialign aot``: compile the kernels ahead of time for TPUs and an H100, without them.

Compiles the variant matrix (``variants.full_matrix``, or ``--matrix ci``, the subset the
test suite compiles) for each target in a child process per target, prints a Markdown
table (compile seconds; on the GPU, registers per kernel) and writes every result as
JSON.  Exit status 1 if any variant fails to compile, spills registers on the GPU, or
lacks its kernels.  Needs the ``aot`` extra (``pip install -e '.[aot]'``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import targets
from .variants import ci_matrix, full_matrix


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", action="append", choices=targets.TARGETS, help="target(s) (default: all)")
    parser.add_argument("--matrix", choices=("full", "ci"), default="full", help="which variants (default: full)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per compile (default 600)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every result here")
    parser.add_argument(
        "--vmem",
        action="store_true",
        help="instead: measure each Mosaic kernel's scoped VMEM (bisection of vmem_limit_bytes) at the default "
        "and the documented block sizes, on the TPU targets",
    )


def problems(result: dict, kernels: list[str]) -> list[str]:
    """What is wrong with one compile result (empty when it compiled clean, kernels present)."""
    if not result.get("ok"):
        return [f"{result.get('stage', 'compile')} failed: {result.get('error', '?')}"]
    found = []
    for stage in ("lowered", "compiled"):
        calls = result[stage]
        if calls["custom_calls"] < len(kernels) or sorted(calls["kernel_names"]) != sorted(kernels):
            found.append(f"{stage} program holds {calls}, expected the kernels {sorted(kernels)}")
    if "ptxas" in result:
        for name in kernels:
            report = result["ptxas"].get(name)
            if report is None:
                found.append(f"no ptxas report for {name}")
            elif report.get("spill_stores", 0) or report.get("spill_loads", 0):
                found.append(f"{name} spills: {report}")
    return found


def _cell(result: dict, kernels: list[str]) -> str:
    if problems(result, kernels):
        return "FAIL"
    text = f"ok {result['compile_s']:.1f} s"
    if "ptxas" in result:
        text += " r" + "/".join(str(result["ptxas"][k]["registers"]) for k in kernels)
    return text


def run_vmem(chosen: list[str], json_path: Path | None) -> int:
    import subprocess
    import sys

    from jax_roialign.kernels.target import DEFAULT_BLOCK_SIZES

    from .variants import DOCUMENTED_BLOCK_SIZES

    default = DEFAULT_BLOCK_SIZES["mosaic"]
    blocks = [(default.channels, default.tile_rows, default.tile_cols), *DOCUMENTED_BLOCK_SIZES["tpu"]]
    lines = []
    for target in (t for t in chosen if targets.platform_of(t) == "tpu"):
        why = targets.unavailable(target)
        if why:
            print(f"{target}: skipped, {why}")
            continue
        cmd = [sys.executable, "-m", "jax_roialign.tools.aot.vmem", target, *(",".join(map(str, b)) for b in blocks)]
        proc = subprocess.Popen(
            cmd, env=targets.environment(target), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        for line in proc.stdout:
            if line.startswith("{"):
                lines.append(json.loads(line))
                r = lines[-1]
                blocks_text = "x".join(map(str, r["block_sizes"]))
                print(f"{target} {r['mode']} {r['pass']} {blocks_text}: {r['vmem_bytes'] or r['error']}", flush=True)
        proc.wait()
    if json_path:
        json_path.write_text(json.dumps(lines, indent=1))
    return 1 if any(r["error"] for r in lines) else 0


def run(args: argparse.Namespace) -> int:
    from .runner import compile_all

    chosen = args.target or list(targets.TARGETS)
    if args.vmem:
        return run_vmem(chosen, args.json)
    results: dict[str, list[dict]] = {}
    failed = 0
    for target in chosen:
        why = targets.unavailable(target)
        if why:
            print(f"{target}: skipped, {why}")
            continue
        variants = full_matrix(target) if args.matrix == "full" else ci_matrix(target)
        kernels = {v.name: v.kernels() for v in variants}

        def report(result: dict, target=target, kernels=kernels) -> None:
            wanted = kernels[result["variant"]]
            issues = problems(result, wanted)
            print(f"{target} {result['variant']}: {'; '.join(issues) if issues else _cell(result, wanted)}", flush=True)

        results[target] = compile_all(target, variants, timeout_s=args.timeout, on_result=report)
        failed += sum(bool(problems(r, kernels[r["variant"]])) for r in results[target])
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    print()
    names = list(dict.fromkeys(r["variant"] for rs in results.values() for r in rs))
    print("| variant | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for name in names:
        cells = []
        for rs in results.values():
            r = next((r for r in rs if r["variant"] == name), None)
            kind = "avg" if name.startswith("avg") else "max"
            cells.append(
                "-" if r is None else _cell(r, [f"roi_align_{kind}_forward", f"roi_align_{kind}_features_backward"])
            )
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\n{failed} failed of {sum(len(rs) for rs in results.values())}")
    return 1 if failed else 0
