"""The floor under a training step's time per box at small K: writing the features' gradient.

    python benchmarks/experiments/gradient_fill.py [results.json] [runner]

A step returns the gradient w.r.t. the features, a dense (N, H, W, C) array (27.9 MB on
fpn-p3-sr2) that is written whatever the number of boxes K.  This times that write
alone: ``memset`` of a block of that size, rotating over four blocks so that none is in
the 32 MiB L3, by one and by two threads (median and minimum of 40 each).

With F the fastest fill measured and c the step's best time per box in the results'
sweep (at K_best), no op that returns a dense gradient takes less than
``c - F / K_best + F / K`` per box at K.  Over the best, that is the floor printed for
each K next to the measured ratio: where the floor exceeds 1.3, issue 14's "within 1.3x
of the best time per box" cannot hold for any implementation at the per-box speed of
ours; only a slower one (more time per box to hide F in) could meet it.
"""

import ctypes
import json
import sys
import threading
import time

import numpy as np

FEATURES_BYTES = 2 * 100 * 136 * 256 * 4  # fpn-p3-sr2's features, float32

_libc = ctypes.CDLL(None)
_libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]


def _fill(block: np.ndarray, threads: int) -> None:
    """memset the block to zero in `threads` equal parts, each on its own thread (ctypes
    releases the GIL for the call)."""
    part = block.nbytes // threads
    workers = [
        threading.Thread(target=_libc.memset, args=(block.ctypes.data + i * part, 0, part)) for i in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def fill_seconds(threads: int, calls: int = 40) -> list[float]:
    """Wall times of `calls` fills, each of a different block than the last four."""
    blocks = [np.ones(FEATURES_BYTES // 4, np.float32) for _ in range(4)]
    times = []
    for i in range(calls):
        start = time.perf_counter()
        _fill(blocks[i % 4], threads)
        times.append(time.perf_counter() - start)
    return times


def main(results: str | None, runner: str) -> None:
    fastest = float("inf")
    for threads in (1, 2, 1, 2):
        t = fill_seconds(threads)
        fastest = min(fastest, min(t))
        print(
            f"fill of {FEATURES_BYTES / 1e6:.1f} MB, {threads} thread(s): median {1e3 * np.median(t):.3f} ms "
            f"({FEATURES_BYTES / np.median(t) / 1e9:.0f} GB/s), min {1e3 * min(t):.3f} ms"
        )
    if results is None:
        return
    sweep = json.load(open(results))["scaling"][runner]
    per_box = {int(k): 1e3 * v["forward_backward_ms"] / int(k) for k, v in sweep.items()}
    k_best = min(per_box, key=per_box.get)
    best = per_box[k_best]
    fill_us = 1e6 * fastest
    print(f"\n{runner} step, best {best:.1f} us per box at K = {k_best}; F = {1e3 * fastest:.3f} ms")
    print("| K | measured us/box | / best | floor us/box | floor / best |\n|---:|---:|---:|---:|---:|")
    for k, t in sorted(per_box.items()):
        floor = best - fill_us / k_best + fill_us / k
        print(f"| {k} | {t:.1f} | {t / best:.2f} | {floor:.1f} | {floor / best:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None, sys.argv[2] if len(sys.argv) > 2 else "jax_roialign[cpu]")
