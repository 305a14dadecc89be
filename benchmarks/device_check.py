#!/usr/bin/env python
"""One command on a lent GPU or TPU machine: install this checkout, then ``python -m jax_roialign device-check``.

    python benchmarks/device_check.py --out "$OUT" --wheels .device-wheels --commit <sha>
    python benchmarks/device_check.py --dry-run --out /tmp/device-check   # any machine, seconds

Installs the project without dependencies (the machine has JAX, torch and torchvision
and no network) and, from a folder of wheels carried along (``--wheels``), the test
tools the kernel tests need; then runs the check (see ``jax_roialign/tools/device_check.py``)
with GPU memory allocated on demand, so that its test subprocess and torchvision share
the device.  ``--dry-run`` installs nothing.  docs/kernels.md, "The device check", has
the exact command for the device machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What the kernel tests import beyond JAX and NumPy (pytest-xdist runs them in parallel), and
# the build backend pyproject.toml names (the install below builds without isolation).
TEST_REQUIREMENTS = ("pytest", "pytest-xdist", "chex", "hypothesis", "setuptools>=68")


def install(wheels: Path | None) -> dict:
    """pip install the test tools from the carried wheels, then the checkout (no dependencies, no index)."""
    steps = []
    if wheels is not None:
        steps.append(
            [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheels), *TEST_REQUIREMENTS]
        )
    steps.append(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-e", str(ROOT)]
    )
    results = []
    for cmd in steps:
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        results.append(
            {
                "command": " ".join(cmd),
                "exit_status": done.returncode,
                "seconds": round(time.perf_counter() - start, 2),
                "output_tail": (done.stdout + done.stderr)[-2000:],
            }
        )
    return {"commands": results, "ok": all(r["exit_status"] == 0 for r in results)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "device-check")))
    parser.add_argument("--wheels", type=Path, help="folder of wheels of pytest, pytest-xdist, chex, hypothesis")
    parser.add_argument("--dry-run", action="store_true")
    args, rest = parser.parse_known_args()
    args.out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "jax_roialign", "device-check", "--out", str(args.out), *rest]
    if args.dry_run:
        command.append("--dry-run")
    else:
        log = args.out / "install.json"
        log.write_text(json.dumps(install(args.wheels), indent=1) + "\n")
        command += ["--install-log", str(log)]
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")
    return subprocess.run(command, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
