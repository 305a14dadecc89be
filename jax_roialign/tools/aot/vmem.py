"""The scoped VMEM a Mosaic kernel needs, measured by compiling it under shrinking limits.

Mosaic refuses a kernel whose scoped VMEM exceeds ``vmem_limit_bytes`` (an E1001
"CompileTimeScopedVmemOom" error); the least limit at which a kernel compiles is what it
needs.  :func:`needed_bytes` finds it by bisection to a granularity of 4 KiB, compiling one
kernel at a time: the forward kernel alone, or the feature-gradient kernel (the program
``jax.linear_transpose`` of the kernels' linear map, in which XLA keeps only that kernel and,
for max modes, the forward search that finds the winners, which needs less).

Run in a process with the target's environment (``targets.environment``), e.g. through
``python -m jax_roialign aot --vmem``.
"""

from __future__ import annotations

from . import targets

GRANULE = 4096


def kernel_program(compiler: targets.Compiler, mode: str, block_sizes, backward: bool, limit: int | None, shape):
    """(function, abstract arguments) compiling one kernel (see the module docstring) at a VMEM limit."""
    import jax
    import jax.numpy as jnp

    from jax_roialign import kernels
    from jax_roialign.conventions import RoIAlignSpec

    n, h, w, c, k, out = shape
    spec = RoIAlignSpec((out, out), 1 / 16, 2, True, mode)
    target = kernels.Target("mosaic", vmem_limit_bytes=limit)
    blocks = kernels.BlockSizes(*block_sizes)

    def forward(x, boxes, batch):
        return kernels.roi_align(x, boxes, batch, spec, block_sizes=blocks, target=target)

    x = compiler.abstract((n, h, w, c), jnp.float32)
    boxes, batch = compiler.abstract((k, 4), jnp.float32), compiler.abstract((k,), jnp.int32)
    if not backward:
        return forward, (x, boxes, batch)

    def feature_gradient(x, boxes, batch, g):
        _, pullback = jax.vjp(lambda x: forward(x, boxes, batch), x)
        return pullback(g)[0]

    return feature_gradient, (x, boxes, batch, compiler.abstract((k, out, out, c), jnp.float32))


def compiles_within(compiler: targets.Compiler, mode: str, block_sizes, backward: bool, limit: int, shape) -> bool:
    """Whether the kernel compiles with ``vmem_limit_bytes=limit`` (other errors raise)."""
    fn, args = kernel_program(compiler, mode, block_sizes, backward, limit, shape)
    try:
        compiler.compile(compiler.lower(fn, *args))
    except Exception as e:  # noqa: BLE001 - only a VMEM overflow means "no"
        if "vmem" in str(e).lower() and "CompileTimeScopedVmemOom" in str(e):
            return False
        raise
    return True


def needed_bytes(
    compiler: targets.Compiler, mode: str, block_sizes, backward: bool, shape, high: int = 128 * 2**20
) -> int:
    """The least multiple of GRANULE at which the kernel compiles (ValueError if not even at ``high``).

    Doubles a limit from 64 KiB until the kernel compiles, then bisects below it.
    """
    limit = 16 * GRANULE
    while not compiles_within(compiler, mode, block_sizes, backward, limit, shape):
        if limit >= high:
            raise ValueError(f"does not compile within {high} bytes of VMEM")
        limit *= 2
    lo, hi = (limit // 2 // GRANULE if limit > 16 * GRANULE else 0), limit // GRANULE
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if compiles_within(compiler, mode, block_sizes, backward, mid * GRANULE, shape):
            hi = mid
        else:
            lo = mid
    return hi * GRANULE


# The shape measured: P4 of an 800 x 1088 input, 4096 boxes, the box head's 7 x 7 output.
SHAPE = (2, 50, 68, 256, 4096, 7)


def main(argv=None) -> int:
    """Child of ``python -m jax_roialign aot --vmem``: one JSON line per (mode, pass, block sizes)."""
    import argparse
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("blocks", nargs="+", help="channels,tile_rows,tile_cols")
    args = parser.parse_args(argv)
    compiler = targets.Compiler(args.target)
    for text in args.blocks:
        blocks = tuple(int(v) for v in text.split(","))
        for mode in ("avg", "max", "corner_max"):
            for backward in (False, True):
                try:
                    needed = needed_bytes(compiler, mode, blocks, backward, SHAPE)
                    error = None
                except Exception as e:  # noqa: BLE001
                    needed, error = None, f"{type(e).__name__}: {e}"[:1000]
                line = {"target": args.target, "mode": mode, "pass": "backward" if backward else "forward"}
                line.update(block_sizes=list(blocks), vmem_bytes=needed, error=error)
                print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
