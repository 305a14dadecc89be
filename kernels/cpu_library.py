"""The host-CPU kernels (``kernels/cpu/*.cc``): compiled on first use, cached, registered with XLA.

The C++ source ships with the package and is compiled against the XLA FFI headers of
the jaxlib that is installed (``jax.ffi.include_dir()``), so the library always matches
the running jaxlib; nothing is compiled at install time and the wheel stays pure Python.
The compiler is ``$CXX`` (default ``c++``), with ``-O3 -march=native``; the library is
cached under ``$JAX_ROIALIGN_CACHE_DIR`` (default ``~/.cache/jax_roialign``), keyed by
the source, the compiler command, the jaxlib version and the CPU's feature flags, so a
second process loads it in milliseconds and a cache shared between different CPUs
never hands one the other's instructions.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import jax
import jaxlib

_FOLDER = Path(__file__).with_name("cpu")
SOURCES: tuple[Path, ...] = (_FOLDER / "tap_sum.cc", _FOLDER / "winners.cc")
HEADERS: tuple[Path, ...] = (_FOLDER / "common.h",)
TARGETS: tuple[str, ...] = tuple(
    f"JaxRoialign{family}{op}{dtype}"
    for family in ("", "Winner")
    for op in ("Read", "FeaturesTranspose", "WeightsTranspose")
    for dtype in ("F32", "F64")
)
_FLAGS = ("-std=c++17", "-O3", "-march=native", "-fopenmp-simd", "-DNDEBUG", "-fPIC", "-shared")


class CpuKernelUnavailable(RuntimeError):
    """The host-CPU kernels could not be built or loaded here (the message says why)."""


def cache_dir() -> Path:
    """Where compiled libraries are kept: $JAX_ROIALIGN_CACHE_DIR, else ~/.cache/jax_roialign."""
    configured = os.environ.get("JAX_ROIALIGN_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jax_roialign"


def _cpu_features() -> str:
    """The CPU's feature flags (Linux), else what the platform module knows of it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()}"


def _command(compiler: str, output: Path) -> list[str]:
    return [compiler, *_FLAGS, "-isystem", jax.ffi.include_dir(), *map(str, SOURCES), "-o", str(output)]


def _library_path(compiler: str) -> Path:
    digest = hashlib.sha256()
    for source in SOURCES + HEADERS:
        digest.update(source.read_bytes())
    digest.update(" ".join(_command(compiler, Path("out"))).encode())
    digest.update(jaxlib.__version__.encode())
    digest.update(_cpu_features().encode())
    return cache_dir() / f"jax_roialign_cpu_{digest.hexdigest()[:16]}.so"


def _build(compiler: str, path: Path) -> None:
    """Compile SOURCES into path, atomically (concurrent builders each write their own file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=path.parent)
    os.close(fd)
    try:
        result = subprocess.run(_command(compiler, Path(tmp)), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise CpuKernelUnavailable(f"compiling the CPU kernels with {compiler!r} failed:\n{result.stderr[-4000:]}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@functools.cache
def load() -> ctypes.CDLL:
    """The compiled kernels, built if needed and registered as XLA FFI targets for the CPU.

    Raises:
      CpuKernelUnavailable: no compiler, a failed compile, or an unwritable cache.
    """
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise CpuKernelUnavailable(f"no C++ compiler {compiler!r} on PATH (set CXX) to build the CPU kernels")
    path = _library_path(compiler)
    if not path.exists():
        try:
            _build(compiler, path)
        except OSError as error:
            raise CpuKernelUnavailable(f"cannot build the CPU kernels in {path.parent}: {error}") from error
    library = ctypes.cdll.LoadLibrary(str(path))
    for name in TARGETS:
        jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(library, name)), platform="cpu")
    return library


@functools.cache
def available() -> bool:
    """Whether :func:`load` succeeds here (it is tried once per process)."""
    try:
        load()
    except CpuKernelUnavailable:
        return False
    return True
