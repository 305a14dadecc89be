"""The kernels compiled for TPU v4, v5e, v5p, v6e, 7x and an H100 on this CPU (deviceless ahead-of-time).

Each test compiles, in one child process per target (``jax_roialign.tools.aot``), the
variants of ``variants.ci_matrix``: programs of the public op with ``impl="pallas"``
lowered for the target's devices as a user compiles ahead of time, run through libtpu's
Mosaic compiler or XLA's Triton pipeline and ptxas.  A variant fails when it does not
compile (a Mosaic error, VMEM or SMEM or shared memory overflow; a register spill on the
GPU, which ``--xla_gpu_fail_ptx_compilation_on_register_spilling`` makes an error), when
ptxas reports spills, or when the compiled program lacks its Mosaic / Triton kernels.
The full matrix is ``python -m jax_roialign aot`` (docs/kernels.md).  Without the ``aot``
extra the tests skip, naming what is missing.
"""

from __future__ import annotations

import pytest

from jax_roialign.tools.aot import command, runner, targets, variants


@pytest.mark.parametrize("target", targets.TARGETS)
def test_kernels_compile_for_the_hardware(target):
    why = targets.unavailable(target)
    if why:
        pytest.skip(f"compiling for {target} needs the aot extra: {why}")
    chosen = variants.ci_matrix(target)
    results = runner.compile_all(target, chosen, timeout_s=300)
    assert [r["variant"] for r in results] == [v.name for v in chosen]
    failures = [
        f"{v.name}: {'; '.join(issues)}"
        for v, r in zip(chosen, results, strict=True)
        if (issues := command.problems(r, v.kernels()))
    ]
    assert not failures, f"{len(failures)} of {len(chosen)} variants failed for {target}:\n" + "\n".join(failures)


def test_problems_names_failures_spills_and_missing_kernels():
    """The judge of a compile result fails what it must (a check of the check)."""
    kernels = ["roi_align_avg_forward", "roi_align_avg_features_backward"]
    calls = {"custom_calls": 2, "kernel_names": sorted(kernels)}
    clean = {"ok": True, "lowered": calls, "compiled": calls}
    assert command.problems(clean, kernels) == []
    assert command.problems({"ok": False, "stage": "compile", "error": "MosaicError: x"}, kernels)
    assert command.problems({**clean, "compiled": {"custom_calls": 0, "kernel_names": []}}, kernels)
    spilled = {k: {"registers": 255, "spill_stores": 8, "spill_loads": 8} for k in kernels}
    assert command.problems({**clean, "ptxas": spilled}, kernels)
    assert command.problems({**clean, "ptxas": {}}, kernels)
    assert (
        command.problems({**clean, "ptxas": {k: {"registers": 40, "spill_stores": 0} for k in kernels}}, kernels) == []
    )


def test_ptxas_report_and_scoped_vmem_are_parsed():
    log = (
        "ptxas info    : Compiling entry function 'roi_align_avg_forward' for 'sm_90a'\n"
        "ptxas info    : Function properties for roi_align_avg_forward\n"
        "    0 bytes stack frame, 12 bytes spill stores, 16 bytes spill loads\n"
        "ptxas info    : Used 166 registers, used 1 barriers, 400 bytes cmem[0]\n"
        "ptxas info    : Compiling entry function 'fusion_3' for 'sm_90a'\n"
        "ptxas info    : Used 20 registers\n"
    )
    assert targets.ptxas_report(log) == {
        "roi_align_avg_forward": {"stack": 0, "spill_stores": 12, "spill_loads": 16, "registers": 166}
    }
    message = "Scoped allocation with size 19.85M and limit 16.00M exceeded scoped vmem limit by 3.85M."
    assert targets.scoped_vmem_bytes(message) == round(19.85 * 2**20)
    assert targets.scoped_vmem_bytes("no such report") is None


def test_ci_matrix_rotates_every_mode_over_every_dtype_and_grid():
    """Over the six targets, every mode meets every (dtype, grid) pair; every target compiles every kernel."""
    seen = set()
    for target in targets.TARGETS:
        chosen = variants.ci_matrix(target)
        assert {v.mode for v in chosen} == set(variants.MODES)
        seen |= {(v.mode, v.dtype, v.sampling_ratio) for v in chosen if v.block_sizes is None}
    assert seen >= {(m, d, r) for m in variants.MODES for d in variants.DTYPES for r in variants.SAMPLING_RATIOS}
