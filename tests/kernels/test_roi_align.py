"""The Pallas path (interpret mode on this CPU) against the XLA path and the NumPy reference.

The shared test base (``tests/roi_align_base.py``) runs here on the kernels as
:class:`TestRoIAlignPallas`: the public API's conventions, layouts, box forms and edge
cases.  The other tests compare at the canonical level (``kernels.roi_align`` vs
``xla.roi_align``) so that bad batch indices and NaN boxes can sit in the same call as
ordinary boxes, with channel blocks small enough to split the channels.  The
cross-framework fixtures run on the kernels in tests/compat/test_fixtures.py.
"""

from __future__ import annotations

import functools
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_roialign as jr
from jax_roialign import kernels, ops, xla
from jax_roialign.compat import onnx
from jax_roialign.conventions import RoIAlignSpec
from tests import cases, reference
from tests.roi_align_base import RoIAlignTestBase


class TestRoIAlignPallas(RoIAlignTestBase):
    """The shared suite on the Pallas kernels: interpret mode on a CPU, compiled on a GPU or TPU."""

    impl = "pallas"


# A map of at most 8 x 8 keeps the XLA reference's adaptive avg to one window tier (fast to compile).
N, H, W, C = 2, 8, 7, 3
SCALE = 0.5
OUTPUT_SIZE = (3, 4)
# Small channel blocks so that the 3 channels span two blocks (one padded).
BLOCKS = kernels.BlockSizes(channels=2, tile_rows=4, tile_cols=4)
CONVENTIONS = [
    RoIAlignSpec(OUTPUT_SIZE, SCALE, ratio, aligned, mode)
    for mode in ("avg", "max", "corner_max")
    for ratio in (0, 1, 2, 3)
    for aligned in (True, False)
]


def _problem(seed: int = 0):
    """(features, boxes, batch_indices) float32 with every edge case: see cases.edge_boxes.

    Also a NaN box and a box whose batch index lies outside [0, N).
    """
    features = cases.random_features(seed, (N, H, W, C), "float32")
    extra = [[np.nan, 2.0, 9.0, 11.0], [3.0, 2.0, 15.0, 13.0]]
    boxes = np.concatenate([cases.edge_boxes(H, W, SCALE), cases.random_boxes(seed, 4, H, W, SCALE), extra])
    batch = np.arange(len(boxes), dtype=np.int32) % N
    batch[-1] = N
    return jnp.asarray(features, jnp.float32), jnp.asarray(boxes, jnp.float32), jnp.asarray(batch)


def _cotangent(k: int, dtype=jnp.float32) -> jax.Array:
    return jnp.asarray(np.random.default_rng(7).uniform(0.5, 1.5, (k, *OUTPUT_SIZE, C)), dtype)


@functools.partial(jax.jit, static_argnames="spec")
def _xla_value_and_feature_grad(x, boxes, batch, g, spec):
    out, pullback = jax.vjp(lambda x: xla.roi_align(x, boxes, batch, spec), x)
    return out, pullback(g)[0]


def _pallas_value_and_feature_grad(x, boxes, batch, g, spec, block_sizes=BLOCKS):
    out, pullback = jax.vjp(lambda x: kernels.roi_align(x, boxes, batch, spec, block_sizes=block_sizes), x)
    return out, pullback(g)[0]


def _tolerance(dtype: str, spec: RoIAlignSpec, features: jax.Array, n_reduced: int) -> float:
    """cases.tolerance, plus for max modes the effect of float32 coordinate rounding.

    The two paths may round a sample coordinate differently (XLA fuses the
    coordinate arithmetic differently in each program); a value then moves by up
    to its slope times that rounding, as in tests/roi_align_base.py.
    """
    tol = cases.tolerance(dtype, n_reduced)
    if spec.mode != "avg":
        tol = max(tol, 16 * cases.EPS["float32"] * max(H, W) * float(jnp.abs(features).max()))
    return tol


def _n_reduced(boxes: jax.Array) -> int:
    """Bound on the terms that a value or a feature-gradient entry sums: 4 taps per sample,
    over the samples of every bin of every box (the largest adaptive grid, at least 3)."""
    finite = np.asarray(boxes)[np.all(np.isfinite(np.asarray(boxes)), axis=1)]
    extent = np.abs(finite[:, 2:] - finite[:, :2]).max() * SCALE + 1
    grid = max(3, int(np.ceil(extent / min(OUTPUT_SIZE))))
    return 4 * grid**2 * len(boxes) * OUTPUT_SIZE[0] * OUTPUT_SIZE[1]


@pytest.mark.parametrize("spec", CONVENTIONS, ids=lambda s: f"{s.mode}-r{s.sampling_ratio}-aligned{s.aligned}")
def test_matches_xla_forward_and_feature_gradient(spec):
    x, boxes, batch = _problem()
    g = _cotangent(len(boxes))
    got = _pallas_value_and_feature_grad(x, boxes, batch, g, spec)
    want = _xla_value_and_feature_grad(x, boxes, batch, g, spec)
    tol = _tolerance("float32", spec, x, _n_reduced(boxes))
    chex.assert_trees_all_close(got[0], want[0], rtol=tol, atol=tol)
    chex.assert_trees_all_close(got[1], want[1], rtol=tol, atol=tol * float(jnp.abs(want[1]).max()))
    assert np.all(np.isnan(np.asarray(got[0][-2]))) and not np.any(np.asarray(got[0][-1]))


# Every mode on a fixed and an adaptive grid (tests/roi_align_base.py's TestRoIAlignPallas adds more).
LOW_PRECISION = [c for c in CONVENTIONS if c.aligned and c.sampling_ratio in (0, 2)]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("spec", LOW_PRECISION, ids=lambda s: f"{s.mode}-r{s.sampling_ratio}")
def test_low_precision_inputs_accumulate_in_float32(dtype, spec):
    """The result is the float32 computation rounded once to the input dtype (XLA's contract)."""
    x, boxes, batch = _problem(seed=1)
    x = x.astype(dtype)
    g = _cotangent(len(boxes), dtype)
    out, grad = _pallas_value_and_feature_grad(x, boxes, batch, g, spec)
    assert out.dtype == grad.dtype == jnp.dtype(dtype)
    want_out, want_grad = _xla_value_and_feature_grad(x.astype(jnp.float32), boxes, batch, g.astype(jnp.float32), spec)
    tol = _tolerance(dtype, spec, want_out, _n_reduced(boxes))
    chex.assert_trees_all_close(out.astype(jnp.float32), want_out, rtol=tol, atol=tol)
    scale = float(jnp.abs(want_grad).max())
    chex.assert_trees_all_close(grad.astype(jnp.float32), want_grad, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("spec", [CONVENTIONS[5], CONVENTIONS[19]], ids=lambda s: s.mode)
def test_box_gradient_is_the_xla_paths(spec):
    """impl="pallas" takes the boxes' gradient from the XLA path; NaN and bad-index boxes get zero ones.

    kernels.roi_align alone is differentiable in the features only, and says so.
    """
    x, boxes, batch = _problem(seed=2)
    g = _cotangent(len(boxes))

    def box_grad(impl):
        def loss(b):
            out = ops.roi_align_canonical(x, b, batch, spec, impl)
            return jnp.sum(jnp.where(jnp.isnan(out), 0.0, g * out))  # a loss that ignores the NaN row

        return jax.grad(loss)

    got, want = box_grad("pallas")(boxes), box_grad("xla")(boxes)
    chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-5 * float(jnp.abs(want).max()))
    assert np.all(np.isfinite(np.asarray(got))) and not np.any(np.asarray(got[-2:]))
    with pytest.raises(NotImplementedError, match="differentiable in the features only"):
        jax.grad(lambda b: kernels.roi_align(x, b, batch, spec).sum())(boxes)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("mode", ["avg", "max", "corner_max"])
def test_adaptive_grids_exact_without_cap(mode):
    """Bins of hundreds of samples, boxes far larger than the map and than any tile, in float64."""
    features = cases.random_features(3, (1, 9, 11, 2))
    boxes = np.array([[-20.3, -150.1, 40.7, 249.2], [2.1, 1.7, 9.9, 8.4], [-3.0, 4.0, 400.0, 5.5]])
    batch = np.zeros(3, np.int32)
    got = kernels.roi_align(
        jnp.asarray(features), jnp.asarray(boxes), jnp.asarray(batch), RoIAlignSpec((2, 3), mode=mode)
    )
    assert got.dtype == jnp.float64
    want = reference.roi_align(features, boxes, batch, (2, 3), 1.0, 0, True, mode)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("mode", ["avg", "max", "corner_max"])
def test_block_sizes_change_no_numerics(mode):
    """Two BlockSizes: bitwise-equal where the summation order does not depend on them, else within rounding.

    Bitwise: the max forward pass (per-bin scalar arithmetic) and the avg feature
    gradient (fixed order over boxes and output rows).  Within rounding: the avg
    forward pass (a row's column tiles are summed in tile_cols groups) and the max
    feature gradient (its per-channel coordinate arithmetic is compiled per channel
    block width, and XLA may contract multiply-adds differently).
    """
    x, boxes, batch = _problem(seed=3)
    g = _cotangent(len(boxes))
    spec = RoIAlignSpec(OUTPUT_SIZE, SCALE, 0, True, mode)
    (out_a, grad_a), (out_b, grad_b) = (
        _pallas_value_and_feature_grad(x, boxes, batch, g, spec, block_sizes=blocks)
        for blocks in (BLOCKS, kernels.BlockSizes(channels=4, tile_rows=8, tile_cols=2))
    )
    tol = cases.tolerance("float32", _n_reduced(boxes))
    if mode == "avg":
        chex.assert_trees_all_close(out_a, out_b, rtol=tol, atol=tol)
        chex.assert_trees_all_equal(grad_a, grad_b)
    else:
        chex.assert_trees_all_equal(out_a, out_b)
        chex.assert_trees_all_close(grad_a, grad_b, rtol=tol, atol=tol * float(jnp.abs(grad_a).max()))


@pytest.mark.parametrize("mode", ["avg", "max"])
def test_feature_gradient_is_bitwise_repeatable(mode):
    x, boxes, batch = _problem(seed=4)
    g = _cotangent(len(boxes))
    spec = RoIAlignSpec(OUTPUT_SIZE, SCALE, 2, False, mode)
    first = _pallas_value_and_feature_grad(x, boxes, batch, g, spec)[1]
    second = _pallas_value_and_feature_grad(x, boxes, batch, g, spec)[1]
    chex.assert_trees_all_equal(first, second)


def _public_problem():
    """_problem with every batch index in range (the public API rejects others eagerly)."""
    x, boxes, _ = _problem(seed=5)
    return x, boxes, np.arange(len(boxes), dtype=np.int32) % N


# The convention of CONVENTIONS[4], so that the public-API tests reuse its compiled kernels.
PUBLIC = dict(spatial_scale=SCALE, sampling_ratio=2)


def test_compat_layer_runs_on_the_kernels():
    """onnxruntime's corner max through the compat layer (NCHW, opset 16) with impl="pallas"."""
    x, boxes, batch = _public_problem()
    kw = dict(mode="max", output_height=3, output_width=4, sampling_ratio=2, spatial_scale=SCALE, opset=16)
    x_nchw = jnp.transpose(x, (0, 3, 1, 2))
    chex.assert_trees_all_close(
        onnx.roi_align(x_nchw, boxes, batch, impl="pallas", **kw),
        onnx.roi_align(x_nchw, boxes, batch, impl="xla", **kw),
        rtol=1e-5,
        atol=1e-5,
    )


def kernel_names(fn, *args) -> list[str]:
    """Names of the Pallas kernels in fn's lowered program (its debug locations), in order of appearance.

    The kernels are lowered inside this library's primitives, so they appear in the
    lowered program, not in the jaxpr; on a CPU they lower in interpret mode.
    """
    text = jax.jit(fn).lower(*args).as_text(debug_info=True)
    return list(dict.fromkeys(re.findall(r"roi_align_(?:avg|max)_(?:forward|features_backward)", text)))


@pytest.mark.parametrize(
    "mode,kernels_meant",
    [
        ("avg", ["roi_align_avg_forward", "roi_align_avg_features_backward"]),
        ("max", ["roi_align_max_forward", "roi_align_max_features_backward"]),
        ("corner_max", ["roi_align_max_forward", "roi_align_max_features_backward"]),
    ],
)
def test_lowered_program_runs_the_named_kernels(mode, kernels_meant):
    x, boxes = jnp.ones((1, 6, 7, 2)), jnp.asarray([[1.0, 1.0, 4.0, 5.0]])

    def loss(x):
        return jr.roi_align(x, boxes, 2, mode=mode, impl="pallas").sum()

    assert sorted(kernel_names(jax.value_and_grad(loss), x)) == sorted(kernels_meant)


@pytest.mark.parametrize("platform,target_call", [("cuda", "__gpu$xla.gpu.triton"), ("tpu", "tpu_custom_call")])
@pytest.mark.parametrize("mode", ["avg", "max", "corner_max"])
def test_public_op_lowers_to_the_hardware_kernels(platform, target_call, mode):
    """jr.roi_align(impl="pallas") exported for a GPU or TPU holds the Triton / Mosaic kernels.

    The kernel variant follows the platform the program is lowered for, not the
    machine it is traced on.  Pallas' TPU lowering reads the chip from the mesh, here an
    abstract one (a TPU v5e).  This checks the Pallas -> Triton IR / Mosaic MLIR step
    only; tests/kernels/test_aot.py runs the hardware compilers (ptxas, libtpu).
    """

    def value_and_grads(x, boxes, batch):
        def loss(x):
            return jr.roi_align(x, boxes, 7, batch_indices=batch, spatial_scale=0.25, mode=mode, impl="pallas").sum()

        return jax.value_and_grad(loss)(x)

    args = (
        jax.ShapeDtypeStruct((2, 20, 24, 256), jnp.float32),
        jax.ShapeDtypeStruct((5, 4), jnp.float32),
        jax.ShapeDtypeStruct((5,), jnp.int32),
    )
    unchecked = [jax.export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")]
    chip = cases.tpu_abstract_device()
    with jax.sharding.use_abstract_mesh(jax.sharding.AbstractMesh((1,), ("x",), abstract_device=chip)):
        exported = jax.export.export(jax.jit(value_and_grads), platforms=[platform], disabled_checks=unchecked)(*args)
    assert exported.mlir_module().count(target_call) >= 2  # forward and backward kernels


def test_impl_none_runs_no_pallas_kernel_and_pallas_is_interpreted_on_a_cpu():
    x, boxes, batch = _public_problem()

    def run(x, impl=None):
        return jr.roi_align(x, boxes, OUTPUT_SIZE, batch_indices=batch, impl=impl, **PUBLIC)

    chex.assert_trees_all_close(run(x), run(x, "xla"), rtol=1e-6, atol=1e-6)  # the CPU kernels
    assert kernel_names(run, x) == []
    assert kernel_names(functools.partial(run, impl="pallas"), x) == ["roi_align_avg_forward"]
    chex.assert_trees_all_close(run(x, "pallas"), run(x), rtol=1e-5, atol=1e-5)


def test_a_gpu_without_the_triton_lowering_is_named(monkeypatch):
    """Lowering impl="pallas" for a GPU whose JAX lacks Pallas' Triton lowering raises, saying so."""
    from jax_roialign.kernels import target as target_module

    monkeypatch.setattr(target_module, "_triton_available", lambda: False)
    args = (jax.ShapeDtypeStruct((1, 8, 8, 4), jnp.float32), jax.ShapeDtypeStruct((2, 4), jnp.float32))
    with pytest.raises(NotImplementedError, match="Triton"):
        jax.export.export(jax.jit(lambda x, b: jr.roi_align(x, b, 2, impl="pallas")), platforms=["cuda"])(*args)
