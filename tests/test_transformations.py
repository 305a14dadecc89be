"""Every public op under every JAX transformation, in any order, in one process.

Each op is checked three ways on tiny problems (compilation dominates the cost):

- derivatives (grad, vjp, jvp, jacfwd, jacrev, second order in the features, mixed)
  against finite differences in float64 (``jax.test_util.check_grads``);
- structural transformations (jit, vmap over maps, over box sets and over both,
  jax.checkpoint with each standard policy, lax.scan and lax.fori_loop bodies,
  shard_map, jax.export with its VJP) against plain calls of the op (every op gets jit,
  vmap and checkpoint; the two FULL cases get the whole list; tests/test_export.py and
  tests/test_reliability.py export and shard every form of roi_align);
- the same function traced with different perturbation patterns one after the other
  (the order that once broke), and random sequences of transformations drawn by
  hypothesis, against the same sequence applied to a plain-JAX reference.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jax import export
from jax.experimental import checkify
from jax.sharding import Mesh, PartitionSpec
from jax.test_util import check_grads

import jax_roialign as jr
from jax_roialign import checked
from jax_roialign.compat import tensorflow

N, H, W, C = 2, 6, 7, 2
RNG = np.random.default_rng(7)
FEATURES = RNG.standard_normal((N, H, W, C))
# Sample coordinates away from integers and from the map's borders, so that finite
# differences in the boxes see no kink of the bilinear read.
BOXES = np.array([[0.6, 0.7, 4.3, 5.1], [1.3, 0.4, 5.9, 3.7], [2.25, 1.9, 3.4, 4.6]])
BATCH = np.array([0, 1, 1], np.int32)
NORMALIZED = np.array([[0.11, 0.13, 0.74, 0.83], [0.31, 0.05, 0.92, 0.61], [0.2, 0.4, 0.45, 0.7]])
# The same boxes as [cx, cy, w, h, angle_degrees], turned by angles that put no sample on a kink.
ROTATED = np.concatenate(
    [(BOXES[:, :2] + BOXES[:, 2:]) / 2, BOXES[:, 2:] - BOXES[:, :2], np.array([[17.0], [-33.0], [61.0]])], axis=1
)


@dataclasses.dataclass(frozen=True)
class Case:
    """A public op as f(features, boxes) -> array, and what it is differentiable in."""

    name: str
    fn: Callable[[jax.Array, jax.Array], jax.Array]
    boxes: np.ndarray
    box_derivative: bool = True


def _roi_align(impl: str, mode: str, ratio: int) -> Case:
    def fn(x, b):
        return jr.roi_align(x, b, 2, batch_indices=BATCH, sampling_ratio=ratio, mode=mode, impl=impl)

    return Case(f"roi_align[{impl},{mode},sr{ratio}]", fn, BOXES)


def _multiscale(x, b):
    levels = [x, x[:, ::2, ::2]]
    return jr.multiscale_roi_align(
        levels, b, 2, batch_indices=BATCH, spatial_scales=(1.0, 0.5), sampling_ratio=2, canonical_size=4.0
    )


def _checked(x, b):
    """checked.roi_align as traced code uses it: functionalized by checkify (its error is an output)."""
    return checkify.checkify(lambda x, b: checked.roi_align(x, b, 2, batch_indices=BATCH, sampling_ratio=2))(x, b)[1]


def _score_maps(x):
    """Position-sensitive maps of a 2x2 output: one channel per bin (C * 2 = 4 channels)."""
    return jnp.concatenate([x, -x], axis=-1)


def _paste_masks(x, b):
    """Detectron2's soft mask pasting of one 6 x 6 mask per box (differentiable in masks and boxes)."""
    return jr.paste_masks(x[BATCH, :, :6, 0], b, (8, 9), convention="detectron2", threshold=None)


CASES = {
    c.name: c
    for c in (
        _roi_align("xla", "avg", 2),
        _roi_align("xla", "avg", 0),
        _roi_align("xla", "max", 0),
        _roi_align("xla", "corner_max", 2),
        _roi_align("pallas", "avg", 2),
        _roi_align("pallas", "max", 2),
        _roi_align("cpu", "avg", 2),
        _roi_align("cpu", "avg", 0),
        _roi_align("cpu", "corner_max", 2),
        Case("roi_pool", lambda x, b: jr.roi_pool(x, b, 2, batch_indices=BATCH), BOXES, box_derivative=False),
        Case("multiscale_roi_align", _multiscale, BOXES),
        Case("crop_and_resize", lambda x, b: tensorflow.crop_and_resize(x, b, BATCH, (2, 3)), NORMALIZED),
        Case("checked.roi_align", _checked, BOXES),
        Case("roi_align_rotated", lambda x, b: jr.roi_align_rotated(x, b, 2, batch_indices=BATCH), ROTATED),
        Case("ps_roi_align", lambda x, b: jr.ps_roi_align(_score_maps(x), b, 2, batch_indices=BATCH), BOXES),
        Case("resize", lambda x, b: jr.resize(x, (5, 9), method="bilinear"), BOXES, box_derivative=False),
        Case("paste_masks", _paste_masks, BOXES),
        Case(
            "ps_roi_pool",
            lambda x, b: jr.ps_roi_pool(_score_maps(x), b, 2, batch_indices=BATCH),
            BOXES,
            box_derivative=False,
        ),
    )
}
FLOAT32_ONLY = {"crop_and_resize"}  # TensorFlow's op computes in float32
# A max mode's winning sample can change under a finite-difference step of the boxes, so
# their box derivatives are checked forward against reverse mode instead.
MAX_MODES = {
    "roi_align[xla,max,sr0]",
    "roi_align[xla,corner_max,sr2]",
    "roi_align[pallas,max,sr2]",
    "roi_align[cpu,corner_max,sr2]",
}
# The cases that also run second-order and the full structural matrix (compilation is costly).
FULL = {"roi_align[xla,avg,sr2]", "roi_align[xla,max,sr0]"}  # the CPU kernels' own: tests/kernels/test_cpu.py
# impl="pallas" is differentiable in the boxes to first order only (no mixed derivatives).
FIRST_ORDER_BOXES = {"roi_align[pallas,avg,sr2]", "roi_align[pallas,max,sr2]"}


def _inputs(case: Case, dtype=jnp.float64):
    dtype = jnp.float32 if case.name in FLOAT32_ONLY else dtype
    return jnp.asarray(FEATURES, dtype), jnp.asarray(case.boxes, dtype)


def _assert_close(got, want, tol):
    chex.assert_trees_all_close(got, want, rtol=tol, atol=tol)


@pytest.mark.usefixtures("x64", "unoptimized_compiles")
@pytest.mark.parametrize("name", list(CASES))
def test_derivatives_match_finite_differences(name):
    case = CASES[name]
    x, b = _inputs(case)
    tol = 1e-2 if name in FLOAT32_ONLY else 1e-5
    # First order in the features and the boxes, forward and reverse mode (grad, vjp, jvp).
    check_grads(lambda x: case.fn(x, b), (x,), order=1, modes=("fwd", "rev"), atol=tol, rtol=tol)
    if case.box_derivative:
        if name not in MAX_MODES:
            check_grads(lambda b: case.fn(x, b), (b,), order=1, modes=("fwd", "rev"), atol=tol, rtol=tol)
        _assert_close(jax.jacfwd(case.fn, 1)(x, b), jax.jacrev(case.fn, 1)(x, b), tol)
    if name not in FULL:
        return
    # Second order in the features and in the boxes, and mixed (the boxes' gradient of a
    # features' gradient).
    check_grads(lambda x: jnp.sum(case.fn(x, b) ** 2), (x,), order=2, modes=("rev",), atol=tol, rtol=tol)

    def features_gradient_norm(b):
        return jnp.sum(jax.grad(lambda x: jnp.sum(case.fn(x, b) ** 2))(x) ** 2)

    if name not in MAX_MODES:
        check_grads(features_gradient_norm, (b,), order=1, modes=("rev",), atol=tol, rtol=tol)
        check_grads(lambda b: jnp.sum(jnp.sin(case.fn(x, b))), (b,), order=2, modes=("rev",), atol=tol, rtol=tol)


def test_pallas_says_which_box_derivatives_it_lacks():
    case = CASES["roi_align[pallas,avg,sr2]"]
    x, b = _inputs(case, jnp.float32)
    with pytest.raises(NotImplementedError, match="first order"):
        jax.grad(lambda b: jnp.sum(jax.grad(lambda x: jnp.sum(case.fn(x, b) ** 2))(x)))(b)


def _mesh() -> Mesh:
    return Mesh(np.array(jax.devices()[:1]), ("batch",))


@pytest.mark.usefixtures("unoptimized_compiles")
@pytest.mark.parametrize("name", list(CASES))
def test_structural_transformations_match_plain_calls(name):
    case = CASES[name]
    x, b = _inputs(case, jnp.float32)
    f = case.fn
    tol = 1e-5
    plain = f(x, b)
    xs, bs = jnp.stack([x, 2 * x]), jnp.stack([b, b * 0.9])
    _assert_close(jax.jit(f)(x, b), plain, tol)
    _assert_close(jax.vmap(f)(xs, bs), jnp.stack([f(xs[0], bs[0]), f(xs[1], bs[1])]), tol)

    def loss(x, b):
        return jnp.sum(jnp.sin(f(x, b)))

    argnums = (0, 1) if case.box_derivative else 0
    grads = jax.grad(loss, argnums)(x, b)
    _assert_close(jax.grad(jax.checkpoint(loss), argnums)(x, b), grads, tol)
    if name not in FULL:
        return
    exported = export.deserialize(export.export(jax.jit(jax.value_and_grad(loss, argnums)))(x, b).serialize())
    _assert_close(exported.call(x, b), jax.value_and_grad(loss, argnums)(x, b), tol)
    _assert_close(jax.vmap(f, (0, None))(xs, b), jnp.stack([f(xs[0], b), f(xs[1], b)]), tol)
    _assert_close(jax.vmap(f, (None, 0))(x, bs), jnp.stack([f(x, bs[0]), f(x, bs[1])]), tol)
    for policy in (
        jax.checkpoint_policies.everything_saveable,
        jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    ):
        _assert_close(jax.grad(jax.checkpoint(loss, policy=policy), argnums)(x, b), grads, tol)
    first = jax.tree.map(lambda g: g[0], jax.vmap(jax.grad(loss, argnums), (0, None))(xs, b))
    _assert_close(first, jax.grad(loss, argnums)(xs[0], b), tol)

    def scanned(x):
        return jax.lax.scan(lambda carry, _: (carry, f(carry, b)), x, None, length=2)[1]

    _assert_close(scanned(x), jnp.stack([plain, plain]), tol)
    _assert_close(jax.lax.fori_loop(0, 2, lambda i, acc: acc + f(x, b), jnp.zeros_like(plain)), 2 * plain, tol)
    mesh = _mesh()
    mapped = jax.jit(jax.shard_map(lambda x: f(x, b), mesh=mesh, in_specs=PartitionSpec(), out_specs=PartitionSpec()))
    _assert_close(mapped(x), plain, tol)


@pytest.mark.parametrize("impl", ["xla", "pallas", "cpu"])
def test_perturbation_patterns_in_any_order(impl):
    """The same function traced for the features' gradient, then the boxes', then the features' again."""
    case = _roi_align(impl, "avg", 2)
    x, b = _inputs(case, jnp.float32)
    g = jnp.ones_like(case.fn(x, b))
    fj = jax.jit(case.fn)
    first = jax.jit(lambda x, b: jax.vjp(lambda x: fj(x, b), x)[1](g)[0])(x, b)
    jax.jit(lambda x, b: jax.vjp(case.fn, x, b)[1](g))(x, b)
    again = jax.jit(lambda x, b: jax.vjp(lambda x: case.fn(x, b), x)[1](g)[0])(x, b)
    # Under jit like the others: op-by-op execution may round the kernels' weight tables differently.
    remat = jax.jit(jax.grad(jax.checkpoint(lambda x: jnp.vdot(case.fn(x, b), g))))(x)
    forward = jax.jvp(lambda x: case.fn(x, b), (x,), (x,))[1]
    transposed = jax.linear_transpose(lambda x: case.fn(x, b), x)(g)[0]
    chex.assert_trees_all_equal(first, again, remat)
    _assert_close(forward, case.fn(x, b), 1e-5)  # linear in the features
    _assert_close(transposed, first, 1e-6)


def _dense_avg_reference(x, b, ratio: int):
    """avg RoIAlign as plain jax.numpy with dense per-axis weights: no custom rule anywhere."""
    from jax_roialign.conventions import RoIAlignSpec
    from jax_roialign.core import bins, sampling

    spec = RoIAlignSpec((2, 2), 1.0, ratio, True, "avg")
    by, bx = bins.box_bins(b, spec)

    def dense(axis_bins, length):
        if ratio > 0:
            rows, w = jax.vmap(functools.partial(sampling.fixed_grid_taps, pooled=2, grid=ratio, length=length))(
                axis_bins
            )
            return jnp.sum(jnp.where(rows[..., None] == jnp.arange(length), w[..., None], 0.0), axis=2)
        taps = functools.partial(sampling.adaptive_grid_taps, pooled=2, length=length, window=length)
        return jax.vmap(taps)(axis_bins)[1]

    wy, wx = dense(by, x.shape[1]), dense(bx, x.shape[2])
    return jnp.einsum("kph,khwc,kqw->kpqc", wy, x[BATCH], wx)


TRANSFORMS = ("jit", "grad_features", "grad_boxes", "jvp_boxes", "vmap_maps", "vmap_boxes", "checkpoint")


def _apply(name: str, f: Callable) -> Callable:
    """One transformation of f(x, b) -> array into another function of (x, b) -> array."""
    if name == "jit":
        return jax.jit(f)
    if name == "grad_features":
        return jax.grad(lambda x, b: jnp.sum(jnp.sin(f(x, b))))
    if name == "grad_boxes":
        return lambda x, b: jax.grad(lambda b: jnp.sum(jnp.sin(f(x, b))))(b)
    if name == "jvp_boxes":
        return lambda x, b: jax.jvp(lambda b: f(x, b), (b,), (jnp.ones_like(b),))[1]
    if name == "vmap_maps":
        return lambda x, b: jax.vmap(f, (0, None))(jnp.stack([x, -x]), b).sum(0)
    if name == "vmap_boxes":
        return lambda x, b: jax.vmap(f, (None, 0))(x, jnp.stack([b, b + 0.25])).sum(0)
    return jax.checkpoint(f)


DERIVATIVES = {"grad_features", "grad_boxes", "jvp_boxes"}


@settings(max_examples=10, deadline=None, derandomize=True)
@given(
    impl=st.sampled_from(["xla", "pallas"]),  # the CPU kernels' vmap / scan / derivatives: tests/kernels/test_cpu.py
    ratio=st.sampled_from([2, 0]),
    sequence=st.lists(st.sampled_from(TRANSFORMS), min_size=1, max_size=3),
)
def test_random_sequences_of_transformations(impl, ratio, sequence):
    derivatives = [name for name in sequence if name in DERIVATIVES]
    # impl="pallas": a derivative in the boxes must be the only derivative.
    assume(impl == "xla" or len(derivatives) < 2 or set(derivatives) == {"grad_features"})
    case = _roi_align(impl, "avg", ratio)
    x, b = _inputs(case, jnp.float32)
    ours, reference = case.fn, functools.partial(_dense_avg_reference, ratio=ratio)
    for name in sequence:
        ours, reference = _apply(name, ours), _apply(name, reference)
    _assert_close(ours(x, b), reference(x, b), 2e-4)
