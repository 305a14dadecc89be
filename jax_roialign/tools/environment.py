"""The environment recorded with every benchmark and conformance result."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jax_roialign

# Distributions whose versions a result records when they are installed.
DISTRIBUTIONS: tuple[str, ...] = (
    "jax",
    "jaxlib",
    "numpy",
    "torch",
    "torchvision",
    "onnx",
    "onnxruntime",
    "tensorflow-cpu",
    "tensorflow",
    "opencv-python-headless",
)


def installed_versions(distributions: Sequence[str] = DISTRIBUTIONS) -> dict[str, str]:
    """{distribution: version} of those installed."""
    versions = {}
    for dist in distributions:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


# The paths whose changes change what a benchmark times (pathspecs from the repository's root).
_CODE = (":/jax_roialign", ":/kernels", ":/pyproject.toml")


def git_commit() -> str:
    """The commit of the checkout this package runs from, with "-dirty" appended when its code
    (the package, the kernels, pyproject.toml) differs from it, so the timings are of
    uncommitted code; "unknown" outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", *_CODE).strip())
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def environment() -> dict:
    """Device, Python and library versions, commit, date, and any preloaded library (an allocator
    such as tcmalloc changes large-result timings on the CPU)."""
    import jax

    device = jax.devices()[0]
    return {
        "device": f"{device.platform}: {device.device_kind}",
        "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "jax_roialign": jax_roialign.__version__,
        "versions": installed_versions(),
        "commit": git_commit(),
        "date": time.strftime("%Y-%m-%d"),
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
    }
