"""max's features' transpose (``WinnerFeaturesTranspose``) at a git revision against the working tree, in one process.

    python benchmarks/experiments/winner_scatter_ab.py 11540d7 [rounds]

Both versions of ``kernels/cpu/winners.cc`` are built as the library is (same flags), their
symbols renamed so that both register as FFI targets, and called on the same search
results of fpn-p3-sr2-max: interleaved, median of 21 calls each, the order reversed every
other round (the first call after the other version's reads colder caches).  Prints the
largest difference of the two gradients, then one line per round (rounds default to 4).
Separate processes, or runs minutes apart, disagree by more than the changes measured here
on this machine.
"""

import ctypes
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax_roialign.kernels import cpu_library, max_pool_cpu

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import winners
from jax_roialign.tools.arg_specs import WORKLOADS
from jax_roialign.tools.bench.timing import interleaved_medians

KERNELS = Path(__file__).resolve().parent.parent.parent / "kernels" / "cpu"
SOURCE = "kernels/cpu/winners.cc"


def scatter_target(source: str, tag: str, folder: Path) -> str:
    """Build one winners.cc text with its symbols renamed; returns its features' transpose target."""
    cc, so = folder / f"{tag}.cc", folder / f"{tag}.so"
    cc.write_text(source.replace("JaxRoialignWinner", f"Ab{tag}Winner"))
    includes = ["-I", str(KERNELS), "-isystem", jax.ffi.include_dir()]
    subprocess.run(["c++", *cpu_library._FLAGS, *includes, str(cc), "-o", str(so)], check=True)
    name = f"Ab{tag}WinnerFeaturesTransposeF32"
    jax.ffi.register_ffi_target(
        name, jax.ffi.pycapsule(getattr(ctypes.cdll.LoadLibrary(str(so)), name)), platform="cpu"
    )
    return name


def main(revision: str, rounds: int) -> None:
    w = WORKLOADS["fpn-p3-sr2-max"]
    x, boxes, image = (jnp.asarray(a) for a in w.arrays())
    kw = w.kwargs()
    spec = RoIAlignSpec((w.output_size,) * 2, kw["spatial_scale"], kw["sampling_ratio"], kw["aligned"], "max")
    image = image.astype(jnp.int32)
    by, bx, n_samples = winners.sample_geometry(boxes, spec)
    _, arg, _ = jax.jit(lambda x: winners.search(x, image, by, bx, n_samples, spec))(x)
    (ry, wy), (rx, wx) = max_pool_cpu._tables(boxes, spec, x.shape[1], x.shape[2])
    ct = jnp.asarray(np.random.default_rng(1).standard_normal(arg.shape), x.dtype)
    sources = {
        revision: subprocess.run(
            ["git", "show", f"{revision}:{SOURCE}"], capture_output=True, text=True, check=True
        ).stdout,
        "tree": (KERNELS / "winners.cc").read_text(),
    }
    calls, grads = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, source) in enumerate(sources.items()):
            call = jax.ffi.ffi_call(scatter_target(source, f"v{i}", Path(tmp)), jax.ShapeDtypeStruct(x.shape, x.dtype))
            # the winners as this version takes them (int8 from ab78f19 on); code is not read by "max"
            a = arg.astype(jnp.int8 if "ffi::Buffer<ffi::S8> arg" in source else jnp.int32)
            code = jnp.zeros((), jnp.int32)
            f = jax.jit(lambda ct, call=call, a=a, code=code: call(ct, image, a, code, ry, wy, rx, wx, corner=False))
            f = f.lower(ct).compile()
            calls[label] = lambda f=f: f(ct).block_until_ready()
            grads[label] = np.asarray(f(ct))
    a, b = grads.values()
    print(f"largest difference {np.abs(a - b).max():.2e} (largest entry {np.abs(a).max():.2f})")
    labels = list(calls)
    for r in range(rounds):
        order = labels if r % 2 == 0 else labels[::-1]
        m = interleaved_medians({k: calls[k] for k in order}, 21)
        print(
            f"{revision} {1e3 * m[labels[0]]:.2f} ms, working tree {1e3 * m[labels[1]]:.2f} ms, "
            f"ratio {m[labels[1]] / m[labels[0]]:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 4)
