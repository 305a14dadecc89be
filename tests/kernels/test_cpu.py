"""The CPU kernels (impl="cpu") against the XLA path, the NumPy reference and finite differences.

The shared test base runs on them as :class:`TestRoIAlignCpu` (every mode; adaptive max
grids must decline).  The other tests compare at the canonical level with every edge case in
one call (boxes at and beyond the borders, a NaN box, a batch index outside [0, N)),
check that each contraction is the custom call it claims to be in the compiled
program, that the backward is bitwise repeatable, and how the library is built.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax_roialign.kernels import cpu, cpu_library

import jax_roialign as jr
from jax_roialign import kernels, xla
from jax_roialign.conventions import RoIAlignSpec
from tests import cases
from tests.roi_align_base import RoIAlignTestBase


class TestRoIAlignCpu(RoIAlignTestBase):
    """The shared suite on the CPU kernels."""

    impl = "cpu"

    @staticmethod
    def pools(mode: str, sampling_ratio: int) -> bool:
        return mode == "avg" or sampling_ratio > 0


# 83 channels: whole register blocks (64 float32 / 32 float64 channels) and a remainder.
N, H, W, C = 2, 9, 11, 83
SCALE = 0.5
CONVENTIONS = [
    RoIAlignSpec((3, 4), SCALE, ratio, aligned, "avg") for ratio in (0, 1, 2, 3) for aligned in (True, False)
] + [RoIAlignSpec((3, 4), SCALE, ratio, True, mode) for mode in ("max", "corner_max") for ratio in (1, 2, 3)]


def _problem(dtype=jnp.float32, channels: int = C):
    features = cases.random_features(3, (N, H, W, channels), "float64")
    extra = [[np.nan, 2.0, 9.0, 11.0], [3.0, 2.0, 15.0, 13.0], [1.0, 1.0, 30.0, 22.0]]
    boxes = np.concatenate([cases.edge_boxes(H, W, SCALE), cases.random_boxes(3, 5, H, W, SCALE), extra])
    batch = np.arange(len(boxes), dtype=np.int32) % N
    batch[-2] = N  # outside [0, N): reads nothing, yields zeros
    return jnp.asarray(features, dtype), jnp.asarray(boxes, dtype), jnp.asarray(batch)


def _tolerance(dtype, spec: RoIAlignSpec) -> float:
    # The widest bin of _problem reads at most 15 x 15 taps (the 29 x 21 box at scale 0.5).
    taps = 4 * spec.sampling_ratio**2 if spec.sampling_ratio > 0 else 15 * 15
    taps = 4 if spec.mode != "avg" else taps  # the max modes read one sample's corners
    return cases.tolerance(jnp.dtype(dtype).name, taps)


# avg conventions once, in float32 or float64 by turns: both dtypes meet every grid and alignment.
# The max modes in both: their float32 scatter at grids 1 and 2 is its own loop (by pixels).
@pytest.mark.parametrize(
    "spec,dtype",
    [(c, (jnp.float32, jnp.float64)[(c.sampling_ratio + c.aligned) % 2]) for c in CONVENTIONS if c.mode == "avg"]
    + [(c, dtype) for c in CONVENTIONS if c.mode != "avg" for dtype in (jnp.float32, jnp.float64)],
    ids=str,
)
def test_matches_xla_forward_and_gradients(spec, dtype):
    """Forward, the features' and the boxes' gradients (the three contractions) match the XLA path."""
    with jax.enable_x64(dtype == jnp.float64):
        x, b, idx = _problem(dtype)
        ours = functools.partial(cpu.roi_align, batch_indices=idx, spec=spec)
        ref = functools.partial(xla.roi_align, batch_indices=idx, spec=spec)
        tol = _tolerance(dtype, spec)
        np.testing.assert_allclose(jax.jit(ours)(x, b), jax.jit(ref)(x, b), rtol=tol, atol=tol)
        finite = jnp.isfinite(b).all(axis=1)
        g = jnp.asarray(cases.random_features(4, (len(b), 3, 4, C), "float64"), dtype)

        def loss(fn):
            # The NaN box's output is NaN by contract; it passes no gradient.
            masked = lambda x, b: jnp.where(finite[:, None, None, None], fn(x, b), 0)  # noqa: E731
            return jax.jit(jax.grad(lambda x, b: jnp.vdot(masked(x, b), g), (0, 1)))

        got, want = loss(ours)(x, b), loss(ref)(x, b)
        for a, e in zip(got, want, strict=True):
            np.testing.assert_allclose(a, e, rtol=tol, atol=tol * float(jnp.max(jnp.abs(e))))


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("mode,sampling_ratio", [("avg", 0), ("max", 2)])
def test_gradients_match_finite_differences_to_second_order(mode, sampling_ratio):
    """grad and jvp in the features and the boxes, second order and mixed, in float64."""
    from jax.test_util import check_grads

    x, _, _ = _problem(jnp.float64)
    # Inside the map, no sample on a kink of the read, no grid size at a step of its ceil.
    b = jnp.asarray([[0.6, 0.7, 8.3, 10.1], [1.3, 0.4, 11.9, 7.7], [2.25, 1.9, 6.4, 9.6]])
    idx = jnp.asarray([0, 1, 1])
    spec = RoIAlignSpec((2, 3), SCALE, sampling_ratio, True, mode)
    f = jax.jit(functools.partial(cpu.roi_align, batch_indices=idx, spec=spec))
    check_grads(lambda x, b: jnp.sum(jnp.sin(f(x, b))), (x, b), order=2, modes=("fwd", "rev"), eps=1e-6)


@pytest.mark.parametrize("sampling_ratio", [0, 12])
def test_adaptive_and_large_max_grids_decline(sampling_ratio):
    """impl="cpu" pools the max modes on fixed grids of 1 to 11 samples a side (int8 winners):
    others raise, naming the mode, and impl=None runs XLA for them, with the same values;
    rotated pooling has no CPU kernel."""
    x, b, idx = _problem()
    b, idx = b[:3], idx[:3]
    f = functools.partial(jr.roi_align, output_size=2, batch_indices=idx, sampling_ratio=sampling_ratio, mode="max")
    with pytest.raises(NotImplementedError, match="mode='max' on fixed sampling grids"):
        f(x, b, impl="cpu")
    auto = jax.jit(lambda x: f(x, b))
    assert "JaxRoialign" not in auto.lower(x).compile().as_text()
    np.testing.assert_array_equal(auto(x), jax.jit(lambda x: f(x, b, impl="xla"))(x))
    with pytest.raises(NotImplementedError, match="roi_align_rotated"):
        jr.roi_align_rotated(x, jnp.ones((1, 5)), 2, batch_indices=idx[:1], impl="cpu")


@pytest.mark.parametrize("mode,sampling_ratio", [("avg", 0), ("avg", 2), ("max", 2)])
def test_each_pass_is_its_custom_call(mode, sampling_ratio):
    """impl=None on a CPU runs the kernels: the forward, the features' gradient and the boxes'
    gradient each run their kernel, once (max's forward is the search, in XLA)."""
    x, b, idx = _problem()
    b, idx = b[:6], idx[:6]
    f = functools.partial(jr.roi_align, output_size=3, batch_indices=idx, sampling_ratio=sampling_ratio, mode=mode)
    family = "" if mode == "avg" else "Winner"
    programs = {
        f"JaxRoialign{family}FeaturesTransposeF32": jax.jit(jax.grad(lambda x: jnp.sum(f(x, b)))).lower(x),
        f"JaxRoialign{family}WeightsTransposeF32": jax.jit(jax.grad(lambda b: jnp.sum(f(x, b)))).lower(b),
    }
    if mode == "avg":
        programs["JaxRoialignReadF32"] = jax.jit(f).lower(x, b)
    for target, lowered in programs.items():
        text = lowered.compile().as_text()
        calls = [t for t in cpu_library.TARGETS if f'custom_call_target="{t}"' in text]
        assert calls == [target], (target, calls)


@pytest.mark.parametrize("mode,sampling_ratio", [("avg", 0), ("corner_max", 2)])
def test_backward_is_bitwise_repeatable(mode, sampling_ratio):
    x, b, idx = _problem(channels=64)
    spec = RoIAlignSpec((7, 7), SCALE, sampling_ratio, True, mode)
    grad = jax.jit(jax.grad(lambda x, b: jnp.sum(cpu.roi_align(x, b, idx, spec) ** 2), (0, 1)))
    first = grad(x, b)
    for _ in range(3):
        for a, e in zip(grad(x, b), first, strict=True):
            np.testing.assert_array_equal(a, e)


def test_vmap_and_scan_match_plain_calls():
    """Under vmap the kernels run once per element (forward and features' gradient); scan bodies run them."""
    x, b, idx = _problem()
    b, idx = b[:6], idx[:6]
    spec = RoIAlignSpec((3, 4), SCALE, 2, True, "avg")
    f = jax.jit(functools.partial(cpu.roi_align, batch_indices=idx, spec=spec))
    xs = jnp.stack([x, -2 * x])
    np.testing.assert_allclose(jax.vmap(f, (0, None))(xs, b), jnp.stack([f(x, b), f(-2 * x, b)]), rtol=1e-6)
    grad = jax.grad(lambda x: jnp.sum(f(x, b) ** 2))
    np.testing.assert_allclose(jax.vmap(grad)(xs), jnp.stack([grad(x), grad(-2 * x)]), rtol=1e-5, atol=1e-5)
    scanned = jax.lax.scan(lambda c, _: (c, f(c, b)), x, None, length=2)[1]
    np.testing.assert_allclose(scanned, jnp.stack([f(x, b)] * 2), rtol=1e-6)


def test_library_is_cached_by_source_compiler_and_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("JAX_ROIALIGN_CACHE_DIR", str(tmp_path))
    path = cpu_library._library_path("c++")
    assert path.parent == tmp_path and path.suffix == ".so"
    assert cpu_library._library_path("g++") != path


def test_a_failing_compiler_raises_with_its_message(tmp_path):
    with pytest.raises(kernels.CpuKernelUnavailable, match="compiling the CPU kernels with 'false' failed"):
        cpu_library._build("false", tmp_path / "lib.so")
    assert not list(tmp_path.iterdir())  # no partial library left behind


def test_no_compiler_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-anywhere")
    with pytest.raises(kernels.CpuKernelUnavailable, match="no C\\+\\+ compiler 'no-such-compiler-anywhere'"):
        cpu_library.load.__wrapped__()


@pytest.mark.parametrize("mode,sampling_ratio", [("avg", 0), ("avg", 2), ("corner_max", 2)])
def test_exported_programs_carry_plain_jax_of_the_same_contractions(mode, sampling_ratio):
    """jax.export (and lowering for another platform) gets the kernels' contractions in plain JAX:
    no custom call of this library, the same values and gradients."""
    from jax import export

    x, b, idx = _problem()
    b, idx = b[:8], idx[:8]
    f = functools.partial(jr.roi_align, output_size=(3, 4), batch_indices=idx, sampling_ratio=sampling_ratio, mode=mode)
    on_cpu = functools.partial(f, impl="cpu")
    loss = jax.value_and_grad(lambda x, b: jnp.sum(jnp.sin(on_cpu(x, b))), (0, 1))
    exported = export.deserialize(export.export(jax.jit(loss))(x, b).serialize())
    assert "JaxRoialign" not in exported.mlir_module()
    tol = 1e-5
    for got, want in zip(jax.tree.leaves(exported.call(x, b)), jax.tree.leaves(jax.jit(loss)(x, b)), strict=True):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    tpu = jax.jit(on_cpu).trace(x, b).lower(lowering_platforms=("tpu",))
    assert "JaxRoialign" not in tpu.as_text()
