"""Compile for a TPU or a GPU this machine does not have: deviceless ahead-of-time compilation.

The hardware compilers run on any machine: libtpu's Mosaic pipeline for a TPU, XLA's
Triton pipeline and ``ptxas`` for an H100.  A program is lowered for the devices of a
compile-only topology and compiled, never run.  What it takes (the ``aot`` extra):

- TPU: ``libtpu`` (the version ``jax[tpu]`` pins for the installed jax);
- GPU: ``jax-cuda12-plugin`` and ``nvidia-cuda-nvcc-cu12`` (ptxas and libdevice);
- ``JAX_PLATFORMS=cpu``: the CUDA plugin fails to initialise as a backend without a GPU,
  but its compiler works; ``ALLOW_MULTIPLE_LIBTPU_LOAD=1``: several processes may load
  libtpu at once (it otherwise takes a lock file, one process per TPU host).

The process environment must be set before jax starts (XLA reads its flags and log
levels once): :func:`environment` gives it, and callers run the compiles in a child
process started with it (``jax_roialign.tools.aot.runner``).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import importlib.util
import os
import re
import tempfile
from collections.abc import Iterator
from typing import Any

# Target name -> topology name of one chip (get_topology_desc's topology_name).
TPU_TOPOLOGIES: dict[str, str] = {
    "tpu-v4": "v4:1x1x1",
    "tpu-v5e": "v5e:1x1",
    "tpu-v5p": "v5:1x1x1",
    "tpu-v6e": "v6e:1x1",
    "tpu-7x": "tpu7x:1x1x1",
}
# Target name -> XLA GpuTargetConfigProto (text) shipped beside this module.
GPU_CONFIGS: dict[str, str] = {"gpu-h100": "h100_sxm.txtpb"}
TARGETS: tuple[str, ...] = (*TPU_TOPOLOGIES, *GPU_CONFIGS)

# The custom call a Pallas kernel compiles to, per platform.
KERNEL_CALLS: dict[str, str] = {"tpu": "tpu_custom_call", "gpu": "__gpu$xla.gpu.triton"}
KERNEL_NAME = re.compile(r"roi_align_(?:avg|max)_(?:forward|features_backward)")


def platform_of(target: str) -> str:
    """ "tpu" or "gpu"."""
    if target in TPU_TOPOLOGIES:
        return "tpu"
    if target in GPU_CONFIGS:
        return "gpu"
    raise ValueError(f"unknown AOT target {target!r}; known: {', '.join(TARGETS)}")


def unavailable(target: str) -> str | None:
    """Why this machine cannot compile for target (a missing package, named), or None."""
    if platform_of(target) == "tpu":
        if importlib.util.find_spec("libtpu") is None:
            return "libtpu is not installed (pip install -e '.[aot]')"
        return None
    missing = [
        name
        for name, module in (("jax-cuda12-plugin", "jax_plugins.xla_cuda12"), ("nvidia-cuda-nvcc-cu12", "nvidia"))
        if importlib.util.find_spec(module.split(".")[0]) is None or _find(module) is None
    ]
    if not missing and _ptxas() is None:
        missing = ["nvidia-cuda-nvcc-cu12 (its ptxas)"]
    return f"{', '.join(missing)} not installed (pip install -e '.[aot]')" if missing else None


def _find(module: str):
    try:
        return importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return None


def _ptxas() -> str | None:
    spec = _find("nvidia")
    for root in spec.submodule_search_locations if spec and spec.submodule_search_locations else []:
        path = os.path.join(root, "cuda_nvcc", "bin", "ptxas")
        if os.path.exists(path):
            return path
    return None


def environment(target: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a process that compiles for target.

    GPU: spills fail the compile (``--xla_gpu_fail_ptx_compilation_on_register_spilling``),
    and ptxas runs as a subprocess whose ``-v`` report (registers, spills per kernel) XLA
    logs at ``TF_CPP_VMODULE=subprocess_compilation=2``; :func:`ptxas_report` parses it.
    """
    env = dict(os.environ if base is None else base)
    env["JAX_PLATFORMS"] = "cpu"
    env.setdefault("TPU_SKIP_MDS_QUERY", "1")
    # libtpu takes /tmp/libtpu_lockfile (one process per TPU host); compiling needs no TPU, and
    # compiles for several targets may run side by side (pytest-xdist).
    env["ALLOW_MULTIPLE_LIBTPU_LOAD"] = "1"
    if platform_of(target) == "gpu":
        flags = [
            env.get("XLA_FLAGS", ""),
            "--xla_gpu_fail_ptx_compilation_on_register_spilling=true",
            "--xla_gpu_enable_libnvptxcompiler=false",
        ]
        env["XLA_FLAGS"] = " ".join(f for f in flags if f)
        env["TF_CPP_MIN_LOG_LEVEL"] = "0"
        env["TF_CPP_VMODULE"] = "subprocess_compilation=2"
    return env


def gpu_target_config(target: str) -> str:
    """The GpuTargetConfigProto text of a GPU target.

    A copy of openxla/xla's ``xla/backends/gpu/target_config/specs/<name>.txtpb`` with the
    fields the installed jaxlib does not know removed (see the file's header).
    """
    return importlib.resources.files(__package__).joinpath(GPU_CONFIGS[target]).read_text()


def device(target: str) -> Any:
    """The first (compile-only) device of a one-chip topology of target."""
    from jax.experimental import topologies

    if platform_of(target) == "tpu":
        topology = topologies.get_topology_desc(
            topology_name=TPU_TOPOLOGIES[target],
            platform="tpu",
            chip_config_name="default",
            chips_per_host_bounds=(1, 1, 1),
            num_slices=1,
            wrap=(False, False, False),
        )
    else:
        topology = topologies.get_topology_desc(
            target.split("-", 1)[1], "cuda", target_config=gpu_target_config(target), topology="1x1x1"
        )
    # v4 and 7x chips hold two devices (cores); one is what a single-device program uses.
    return topology.devices[0]


class Compiler:
    """Lowers and compiles jitted functions for one device of a target.

    Arguments are ShapeDtypeStructs placed on that device; lowering happens under the
    device's mesh (Pallas' TPU lowering reads the chip generation from it).
    """

    def __init__(self, target: str):
        import jax
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        self.target = target
        self.platform = platform_of(target)
        self.device = device(target)
        self.mesh = Mesh([self.device], ("x",))
        self._sharding = NamedSharding(self.mesh, PartitionSpec())
        self._jax = jax

    def abstract(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self._jax.ShapeDtypeStruct(tuple(shape), dtype, sharding=self._sharding)

    def lower(self, fn, *args) -> Any:
        with self._jax.set_mesh(self.mesh):
            return self._jax.jit(fn).lower(*args)

    def compile(self, lowered) -> Any:
        with self._jax.set_mesh(self.mesh):
            return lowered.compile()


def kernel_calls(text: str, platform: str) -> dict:
    """{"custom_calls": how many Pallas custom calls, "kernel_names": the kernels named} in HLO text."""
    return {
        "custom_calls": text.count(KERNEL_CALLS[platform]),
        "kernel_names": sorted(set(KERNEL_NAME.findall(text))),
    }


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Captures file descriptor 2 (XLA's C++ log) while the block runs; the text lands in the list."""
    out: list[str] = []
    with tempfile.TemporaryFile("w+b") as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            out.append(capture.read().decode(errors="replace"))


# ptxas -v, as XLA logs it:
#   ptxas info    : Compiling entry function 'roi_align_avg_forward' for 'sm_90a'
#       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
#   ptxas info    : Used 162 registers, used 1 barriers, 400 bytes cmem[0]
_ENTRY = re.compile(r"ptxas info\s*: Compiling entry function '([^']+)'")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"ptxas info\s*: Used (\d+) registers")


def ptxas_report(log: str) -> dict[str, dict[str, int]]:
    """{kernel: {"registers", "stack", "spill_stores", "spill_loads"}} of the RoIAlign kernels in a log."""
    kernels: dict[str, dict[str, int]] = {}
    current = None
    for line in log.splitlines():
        if m := _ENTRY.search(line):
            current = m.group(1) if KERNEL_NAME.search(m.group(1)) else None
            if current:
                kernels.setdefault(current, {})
        elif current and (m := _FRAME.search(line)):
            stack, stores, loads = (int(v) for v in m.groups())
            kernels[current].update(stack=stack, spill_stores=stores, spill_loads=loads)
        elif current and (m := _USED.search(line)):
            kernels[current]["registers"] = int(m.group(1))
    return kernels


# Mosaic's report when a kernel's scoped VMEM exceeds the limit, e.g.
#   Scoped allocation with size 19.85M and limit 16.00M exceeded scoped vmem limit by 3.85M.
_SCOPED = re.compile(r"Scoped allocation with size ([\d.]+)([KMG]?)")


def scoped_vmem_bytes(message: str) -> int | None:
    """The scoped VMEM size a Mosaic out-of-VMEM error reports, in bytes (rounded as reported)."""
    m = _SCOPED.search(message)
    if not m:
        return None
    scale = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m.group(2)]
    return round(float(m.group(1)) * scale)
