"""The avg CPU kernels' inner loops alone, outside XLA (``kernel_alone.cc``).

    python benchmarks/experiments/kernel_alone.py forms fpn-p3-sr2 mask-p2 many-boxes
    python benchmarks/experiments/kernel_alone.py scaling 64 256 1024 4096 8192

``forms``: the read, the features' transpose and the tables' transpose on the tables the
op builds (each bin's taps on the same row merged, ``sampling.merge_equal_taps``) and on
the unmerged ones (T = 2 x grid taps per axis), and both transposes fused into one banded
pass; interleaved, median of 21 calls each.  ``scaling``: the read on fpn-p3-sr2 with K
boxes, time per box with its output reused, or freshly mapped per call (what glibc hands
out above its mmap threshold) with and without the kernels' huge-page advice, and the
first touch of such a block alone; and zeroing a features' gradient, the floor of any
backward whatever K.  float32; threads: ``OMP_NUM_THREADS`` (default all).

The tables are built by the op's own code, written to a temporary folder and read by the
C++ program, compiled here with ``$CXX`` (default ``g++``) and OpenMP.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax_roialign.kernels import tap_sum_cpu

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import sampling
from jax_roialign.core.bins import box_bins
from jax_roialign.tools.arg_specs import WORKLOADS

HERE = Path(__file__).parent
KERNELS = HERE.parent.parent / "kernels" / "cpu"


def write_tables(workload, folder: Path, name: str, merged: bool) -> str:
    """Write the workload's features, a random cotangent and its tap tables; returns their prefix."""
    x, boxes, image = (jnp.asarray(a) for a in workload.arrays())
    kwargs = {k: v for k, v in workload.kwargs().items() if k in ("spatial_scale", "sampling_ratio", "aligned")}
    size = workload.output_size if isinstance(workload.output_size, tuple) else (workload.output_size,) * 2
    spec = RoIAlignSpec(size, **kwargs)
    by, bx = box_bins(boxes, spec)

    def axis(bins, pooled: int, length: int):
        if merged:  # the op's own tables
            return tap_sum_cpu._axis_tables(bins, pooled, length, spec.sampling_ratio)
        # every sample's two neighbours, as fixed_grid_taps gives them, all T read
        rows, weights = jax.vmap(lambda b: sampling.fixed_grid_taps(b, pooled, spec.sampling_ratio, length))(bins)
        return rows, weights, jnp.full(rows.shape[:2], rows.shape[2], jnp.int32)

    (ry, wy, ny), (rx, wx, nx) = axis(by, size[0], x.shape[1]), axis(bx, size[1], x.shape[2])
    ct = np.random.default_rng(0).standard_normal((boxes.shape[0], *size, x.shape[3]), np.float32)
    tables = {"ry": ry, "wy": wy, "ny": ny, "rx": rx, "wx": wx, "nx": nx}
    arrays = {"x": x, "ct": ct, "image": image.astype(jnp.int32), **tables}
    prefix = folder / name
    lines = []
    for key, value in arrays.items():
        value = np.ascontiguousarray(np.asarray(value))
        value.tofile(f"{prefix}.{key}.bin")
        lines.append(" ".join([key, *map(str, value.shape)]))
    Path(f"{prefix}.meta").write_text("\n".join(lines) + "\n")
    return str(prefix)


def build(folder: Path) -> Path:
    binary = folder / "kernel_alone"
    compiler = os.environ.get("CXX", "g++")
    flags = ["-std=c++17", "-O3", "-march=native", "-fopenmp", "-DNDEBUG"]
    includes = ["-I", str(KERNELS), "-isystem", jax.ffi.include_dir()]
    subprocess.run([compiler, *flags, *includes, str(HERE / "kernel_alone.cc"), "-o", str(binary)], check=True)
    return binary


def main(mode: str, args: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        binary = build(folder)
        if mode == "forms":
            for name in args or ["fpn-p3-sr2", "mask-p2", "many-boxes"]:
                w = WORKLOADS[name]
                prefixes = [write_tables(w, folder, f"{name}-{tag}", tag == "merged") for tag in ("taps", "merged")]
                subprocess.run([str(binary), "forms", *prefixes], check=True)
        elif mode == "scaling":
            ks = [int(k) for k in args] or [64, 128, 256, 512, 1024, 2048, 4096, 8192]
            prefixes = [write_tables(WORKLOADS["fpn-p3-sr2"].with_boxes(k), folder, f"k{k}", True) for k in ks]
            subprocess.run([str(binary), "scaling", *prefixes], check=True)
        else:
            raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "", sys.argv[2:])
