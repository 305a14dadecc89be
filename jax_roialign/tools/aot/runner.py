"""Compile variants for one target in a child process, with a timeout per compile.

:func:`compile_all` starts ``python -m jax_roialign.tools.aot.runner`` with the target's
environment (``targets.environment``); the child builds the target's devices once and
compiles the variants one after another, printing one JSON line before and one after
each.  A compile that outlives its timeout kills the child: that variant is recorded as
timed out and a new child takes the rest.  A child killed from outside (a signal it did
not get from here, e.g. the OOM killer) is restarted once on the variants it had left.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

from . import targets
from .variants import Variant

DEFAULT_TIMEOUT_S = 300.0


def compile_variant(compiler: targets.Compiler, variant: Variant) -> dict:
    """Lower and compile one variant; a dict with ``ok`` and what was measured (or the error)."""
    result: dict = {"variant": variant.name, "target": compiler.target}
    fn, args = variant.program(compiler.abstract)
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        lowered = compiler.lower(fn, *args)
    except Exception as e:  # noqa: BLE001 - every failure is a result
        return {**result, "ok": False, "stage": "lower", "error": f"{type(e).__name__}: {e}"[:4000]}
    result["lower_s"] = round(time.perf_counter() - t0, 3)
    result["lowered"] = targets.kernel_calls(lowered.as_text(), compiler.platform)
    t1 = time.perf_counter()
    with targets.captured_stderr() as log:
        try:
            compiled = compiler.compile(lowered)
            error = None
        except Exception as e:  # noqa: BLE001
            error = f"{type(e).__name__}: {e}"[:4000]
    result["compile_s"] = round(time.perf_counter() - t1, 3)
    result["cpu_s"] = round(time.process_time() - cpu0, 3)  # lower + compile, every thread of the process
    if compiler.platform == "gpu":
        result["ptxas"] = targets.ptxas_report(log[0])
    if error is not None:
        return {**result, "ok": False, "stage": "compile", "error": error}
    result["compiled"] = targets.kernel_calls(compiled.as_text(), compiler.platform)
    return {**result, "ok": True}


def _child(target: str, variants: Sequence[Variant]) -> None:
    compiler = targets.Compiler(target)
    for variant in variants:
        print(json.dumps({"start": variant.name}), flush=True)
        print(json.dumps({"result": compile_variant(compiler, variant)}), flush=True)


def compile_all(
    target: str,
    variants: Sequence[Variant],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    on_result: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Results of compiling every variant for target, in order (see the module docstring)."""
    results: list[dict] = []
    pending = list(variants)
    env = targets.environment(target)
    retried = False
    while pending:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec:
            json.dump({"target": target, "variants": [v.to_json() for v in pending]}, spec)
        cmd = [sys.executable, "-m", "jax_roialign.tools.aot.runner", spec.name]
        errors = tempfile.TemporaryFile("w+")
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
        done_in_child, in_flight, timed_out = 0, None, False
        try:
            for line in _lines_with_deadline(proc, timeout_s):
                message = json.loads(line)
                if "start" in message:
                    in_flight = message["start"]
                elif "result" in message:
                    results.append(message["result"])
                    done_in_child += 1
                    in_flight = None
                    if on_result:
                        on_result(message["result"])
        except TimeoutError:
            timed_out = True
            proc.kill()
        finally:
            proc.wait()
            os.unlink(spec.name)
            errors.seek(0)
            log_tail = errors.read()[-1500:]
            errors.close()
        pending = pending[done_in_child:]
        if not pending:
            break
        if proc.returncode < 0 and not timed_out and not retried:
            # Killed from outside (the kernel's OOM killer on a crowded machine): the same
            # variants once more; a crash of the compiler itself repeats and fails below.
            retried = True
            continue
        name = in_flight or pending[0].name
        why = f"timeout after {timeout_s:.0f} s" if timed_out else f"child exited with status {proc.returncode}"
        failed = {"variant": name, "target": target, "ok": False, "stage": "compile", "error": f"{why}: ...{log_tail}"}
        results.append(failed)
        if on_result:
            on_result(failed)
        pending = pending[1:]
    return results


def _lines_with_deadline(proc: subprocess.Popen, timeout_s: float):
    """The child's stdout lines; TimeoutError when one variant takes longer than timeout_s."""
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        if not selector.select(remaining):
            continue
        line = proc.stdout.readline()
        if not line:
            return
        if line.startswith("{"):
            if '"start"' in line:
                deadline = time.monotonic() + timeout_s
            yield line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="child of compile_all: compile the variants in a JSON file")
    parser.add_argument("spec", help='JSON {"target": ..., "variants": [...]}')
    args = parser.parse_args(argv)
    with open(args.spec) as f:
        spec = json.load(f)
    _child(spec["target"], [Variant.from_json(v) for v in spec["variants"]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
