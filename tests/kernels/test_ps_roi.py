"""ps_roi_align(impl="pallas"): one-bin boxes of the position maps pooled by the avg RoIAlign kernels.

The shared test base (``tests/ps_roi_base.py``) runs here on the kernels as
:class:`TestPSRoIPallas` (interpret mode on a CPU); its ps_roi_pool-only tests run once,
on XLA, in ``tests/xla/test_ps_roi.py``.  The other tests compare with the XLA path: the
forward pass and the features' gradient on both grids, the boxes' gradient, the kernels
in the lowered program (interpreted, and exported for a GPU and a TPU), and the contract
of ``core.position_sensitive.bin_boxes``.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_roialign as jr
from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import position_sensitive
from jax_roialign.core.bins import box_bins
from tests import cases
from tests.kernels.test_roi_align import kernel_names
from tests.ps_roi_base import PSRoITestBase


class TestPSRoIPallas(PSRoITestBase):
    """The shared suite on the Pallas kernels: interpret mode on a CPU, compiled on a GPU or TPU."""

    impl = "pallas"
    # ps_roi_pool has no Pallas path: its own tests run once, in tests/xla/test_ps_roi.py.
    test_ps_roi_pool_matches_reference_float64 = None
    test_ps_roi_pool_gradient_is_the_derivative_of_its_forward = None


N, H, W = 2, 7, 8
OUT = (2, 3)
C = 2 * OUT[0] * OUT[1]
SCALE = 0.5


def _problem(seed: int, edges: bool = True):
    """float32 (features, boxes, batch): random boxes (and the edge boxes), a NaN box, a batch index N."""
    features = cases.random_features(seed, (N, H, W, C), "float32")
    boxes = [cases.random_boxes(seed, 4, H, W, SCALE), [[np.nan, 2.0, 9.0, 11.0], [3.0, 2.0, 15.0, 13.0]]]
    if edges:
        boxes.insert(0, cases.edge_boxes(H, W, SCALE))
    boxes = np.concatenate(boxes)
    batch = np.arange(len(boxes), dtype=np.int32) % N
    batch[-1] = N
    return jnp.asarray(features, jnp.float32), jnp.asarray(boxes, jnp.float32), jnp.asarray(batch)


def _tolerance(features: jax.Array, boxes: jax.Array) -> float:
    """cases.tolerance of a float32 reduction over every sample's 4 taps, plus the effect of
    coordinates that differ by a few roundings (bin_boxes' contract): a value moves by its
    slope, at most 2 * max|features| per pixel, times a few ulps of the map's extent."""
    finite = np.asarray(boxes)[np.all(np.isfinite(np.asarray(boxes)), axis=1)]
    grid = max(3, int(np.ceil((np.abs(finite[:, 2:] - finite[:, :2]).max() * SCALE + 1) / min(OUT))))
    n_reduced = 4 * grid**2 * len(boxes) * OUT[0] * OUT[1]
    coordinates = 16 * cases.EPS["float32"] * max(H, W) * float(jnp.abs(features).max())
    return max(cases.tolerance("float32", n_reduced), coordinates)


def _value_and_feature_grad(x, boxes, batch, g, sampling_ratio, impl):
    def f(x):
        return jr.ps_roi_align(
            x, boxes, OUT, batch_indices=batch, spatial_scale=SCALE, sampling_ratio=sampling_ratio, impl=impl
        )

    out, pullback = jax.vjp(f, x)
    return out, pullback(g)[0]


@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_matches_xla_forward_and_feature_gradient(sampling_ratio):
    """Every edge box, a NaN box (NaN) and a batch index outside [0, N) (zeros), on both grids."""
    x, boxes, batch = _problem(seed=0)
    g = jnp.asarray(np.random.default_rng(7).uniform(0.5, 1.5, (len(boxes), *OUT, 2)), jnp.float32)
    run = jax.jit(_value_and_feature_grad, static_argnames=("sampling_ratio", "impl"))
    got = run(x, boxes, batch, g, sampling_ratio, "pallas")
    want = run(x, boxes, batch, g, sampling_ratio, "xla")
    tol = _tolerance(x, boxes)
    chex.assert_trees_all_close(got[0], want[0], rtol=tol, atol=tol)
    chex.assert_trees_all_close(got[1], want[1], rtol=tol, atol=tol * float(jnp.abs(want[1]).max()))
    assert np.all(np.isnan(np.asarray(got[0][-2]))) and not np.any(np.asarray(got[0][-1]))


def test_box_gradient_is_the_xla_paths():
    """The boxes' gradient: the XLA path's for the bin boxes, chained through their arithmetic; zero for a
    NaN box and a bad batch index.  Random boxes only: at an edge box's sample on a pixel boundary, a
    coordinate one rounding away can take the bilinear read's other one-sided slope."""
    x, boxes, batch = _problem(seed=2, edges=False)
    g = jnp.asarray(np.random.default_rng(8).uniform(0.5, 1.5, (len(boxes), *OUT, 2)), jnp.float32)

    def box_grad(impl):
        def loss(b, batch):  # batch traced: a concrete index outside [0, N) is refused
            out = jr.ps_roi_align(x, b, OUT, batch_indices=batch, spatial_scale=SCALE, impl=impl)
            return jnp.sum(jnp.where(jnp.isnan(out), 0.0, g * out))  # a loss that ignores the NaN box

        return jax.jit(jax.grad(loss))

    got, want = box_grad("pallas")(boxes, batch), box_grad("xla")(boxes, batch)
    chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-5 * float(jnp.abs(want).max()))
    assert np.all(np.isfinite(np.asarray(got))) and not np.any(np.asarray(got[-2:]))


def test_lowered_program_runs_the_avg_kernels_and_impl_none_runs_xla():
    x, boxes = jnp.ones((1, 6, 7, 4)), jnp.asarray([[1.0, 1.0, 4.0, 5.0]])

    def loss(x, impl=None):
        return jr.ps_roi_align(x, boxes, 2, impl=impl).sum()

    pallas = functools.partial(loss, impl="pallas")
    assert sorted(kernel_names(jax.value_and_grad(pallas), x)) == [
        "roi_align_avg_features_backward",
        "roi_align_avg_forward",
    ]
    assert kernel_names(jax.value_and_grad(loss), x) == []


@pytest.mark.parametrize("platform,target_call", [("cuda", "__gpu$xla.gpu.triton"), ("tpu", "tpu_custom_call")])
def test_lowers_to_the_hardware_kernels(platform, target_call):
    """Exported for a GPU or TPU, value and both gradients hold the Triton / Mosaic avg kernels
    (as tests/kernels/test_roi_align.py's test_public_op_lowers_to_the_hardware_kernels)."""

    def value_and_grads(x, boxes, batch):
        def loss(x, boxes):
            return jr.ps_roi_align(x, boxes, 7, batch_indices=batch, spatial_scale=0.25, impl="pallas").sum()

        return jax.value_and_grad(loss, argnums=(0, 1))(x, boxes)

    args = (
        jax.ShapeDtypeStruct((2, 20, 24, 7 * 7 * 8), jnp.float32),
        jax.ShapeDtypeStruct((5, 4), jnp.float32),
        jax.ShapeDtypeStruct((5,), jnp.int32),
    )
    unchecked = [jax.export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")]
    chip = cases.tpu_abstract_device()
    with jax.sharding.use_abstract_mesh(jax.sharding.AbstractMesh((1,), ("x",), abstract_device=chip)):
        exported = jax.export.export(jax.jit(value_and_grads), platforms=[platform], disabled_checks=unchecked)(*args)
    assert exported.mlir_module().count(target_call) >= 2  # forward and backward kernels


@pytest.mark.parametrize(
    "spec",
    [
        RoIAlignSpec((7, 7), 1 / 16, 0, True, "avg"),
        RoIAlignSpec((3, 5), 0.5, 0, False, "avg"),
        RoIAlignSpec((2, 3), 0.25, 2, True, "avg"),
    ],
    ids=["adaptive", "adaptive-legacy", "fixed"],
)
def test_bin_boxes_reproduce_every_bin(spec):
    """Under bin_box_spec, bin box (p, q) has bin (p, q)'s start and size within a few roundings and
    exactly its adaptive grid: random boxes, boxes of bins of integral size and boxes of bins far below
    a pixel (sizes that rounding would move across an integer); bad batch indices map to image -1."""
    out_h, out_w = spec.output_size
    rng = np.random.default_rng(0)
    corner = rng.uniform(-50, 300, (300, 2))
    integral = rng.integers(0, 6, (300, 2)) * np.asarray([out_w, out_h]) / spec.spatial_scale
    sizes = [rng.uniform(0, 200, (300, 2)), integral, rng.uniform(0, 1e-5, (300, 2))]
    boxes = jnp.asarray(np.concatenate([np.concatenate([corner, corner + s], 1) for s in sizes]), jnp.float32)

    @jax.jit
    def bins(boxes):
        bin_boxes = position_sensitive.bin_boxes(boxes, spec).reshape(-1, 4)
        return box_bins(boxes, spec), box_bins(bin_boxes, position_sensitive.bin_box_spec(spec))

    whole, sub = jax.tree.map(np.asarray, bins(boxes))
    for axis, pooled in ((0, out_h), (1, out_w)):
        expand = [(slice(None), slice(None), None), (slice(None), None, slice(None))][axis]
        start = whole[axis].start[:, None] + np.arange(pooled, dtype=np.float32) * whole[axis].bin_size[:, None]
        start, size, grid = start[expand], whole[axis].bin_size[:, None, None], whole[axis].grid[:, None, None]
        got = [v.reshape(-1, out_h, out_w) for v in sub[axis]]
        bound = 16 * cases.EPS["float32"] * (np.abs(start) + np.abs(size) + 2.0)  # 2 x bin_boxes' margin
        assert np.all(np.abs(got[0] - start) <= bound) and np.all(np.abs(got[1] - size) <= bound)
        if spec.sampling_ratio > 0:
            assert np.all(got[2] == spec.sampling_ratio)
        else:
            assert np.all((got[2] == grid) | ((grid <= 0) & (got[2] <= 0)))
    images = position_sensitive.bin_box_images(jnp.asarray([1, -1, 2]), 2, (2, 3))
    np.testing.assert_array_equal(images[0], np.arange(6, 12).reshape(2, 3))
    assert np.all(np.asarray(images[1:]) == -1)
