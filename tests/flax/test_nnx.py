"""jax_roialign.flax.nnx: the modules equal the functional API, under jit, vmap and grad, inside a bigger model."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import pytest

import jax_roialign as jr
from jax_roialign import module_config
from tests.flax import (
    BAD_ARGUMENTS,
    BATCH_INDICES,
    BOXES,
    FEATURES,
    IMAGE_SIZE,
    KINDS,
    LEVELS,
    MULTISCALE_CONFIG,
    MULTISCALE_KWARGS,
    OUTPUT_SIZE,
    ROI_ALIGN_CONFIG,
    ROI_ALIGN_KWARGS,
    VALID,
    assert_grads_match,
    assert_vmap_matches,
    multiscale_pool,
    pool,
    recording,
)

nnx = pytest.importorskip("flax.nnx")
jrn = pytest.importorskip("jax_roialign.flax.nnx")


def _module(kind: str) -> nnx.Module:
    if kind == "roi_align":
        return jrn.RoIAlign(OUTPUT_SIZE, **ROI_ALIGN_KWARGS)
    return jrn.MultiScaleRoIAlign(OUTPUT_SIZE, **MULTISCALE_KWARGS)


def test_public_names():
    import jax_roialign.flax

    assert jax_roialign.flax.nnx is jrn
    assert {"RoIAlign", "MultiScaleRoIAlign"} <= set(jrn.__all__)


@pytest.mark.parametrize("kind", KINDS)
def test_holds_no_state(kind):
    assert jax.tree.leaves(nnx.state(_module(kind))) == []


def test_matches_functional_api():
    module = _module("roi_align")
    want = pool(FEATURES, BOXES)
    chex.assert_trees_all_equal(module(FEATURES, BOXES), want)
    flat = module(FEATURES, BOXES.reshape(-1, 4), batch_indices=BATCH_INDICES)
    chex.assert_trees_all_equal(flat, want.reshape(flat.shape))


@pytest.mark.parametrize("levels", ["sequence", "dict"])
@pytest.mark.parametrize("scales", ["given", "inferred"])
def test_multiscale_matches_functional_api(levels, scales):
    features = LEVELS if levels == "sequence" else {"p2": LEVELS[0], "p3": LEVELS[1]}
    kwargs = dict(MULTISCALE_KWARGS)
    if scales == "inferred":
        kwargs["spatial_scales"] = None
        kwargs["image_size"] = IMAGE_SIZE
    got = jrn.MultiScaleRoIAlign(OUTPUT_SIZE, **kwargs)(features, BOXES)
    chex.assert_trees_all_equal(got, jr.multiscale_roi_align(features, BOXES, OUTPUT_SIZE, **kwargs))


def test_forwards_every_keyword(monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(module_config, "roi_align", recording(jr.roi_align, calls))
    monkeypatch.setattr(module_config, "multiscale_roi_align", recording(jr.multiscale_roi_align, calls))
    jrn.RoIAlign(**ROI_ALIGN_CONFIG)(FEATURES, BOXES, batch_indices=BATCH_INDICES)
    jrn.MultiScaleRoIAlign(**MULTISCALE_CONFIG)(LEVELS, BOXES, batch_indices=BATCH_INDICES, valid=VALID)
    common = {"boxes": BOXES, "batch_indices": BATCH_INDICES}
    assert calls[0] == {**ROI_ALIGN_CONFIG, **common, "features": FEATURES}
    assert calls[1] == {**MULTISCALE_CONFIG, **common, "features": LEVELS, "valid": VALID}


@pytest.mark.parametrize("multiscale,kwargs,error,match", BAD_ARGUMENTS)
def test_rejects_bad_arguments_at_construction(multiscale, kwargs, error, match):
    with pytest.raises(error, match=match):
        (jrn.MultiScaleRoIAlign if multiscale else jrn.RoIAlign)(**kwargs)


@pytest.mark.parametrize("kind", KINDS)
def test_vmap(kind):
    assert_vmap_matches(kind, _module(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_grad_wrt_features_and_boxes(kind):
    assert_grads_match(kind, _module(kind))


def test_nnx_jit_with_modules_as_arguments():
    @nnx.jit
    def modules_and_functions(roi, multiscale, features, levels, boxes):
        modules = roi(features, boxes), multiscale(levels, boxes)
        return modules, (pool(features, boxes), multiscale_pool(levels, boxes))

    got, want = modules_and_functions(_module("roi_align"), _module("multiscale"), FEATURES, LEVELS, BOXES)
    chex.assert_trees_all_equal(got, want)


class _Head(nnx.Module):
    """RoIAlign then a Linear layer: the box head of a detector, in miniature."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.pool = jrn.RoIAlign(OUTPUT_SIZE, **ROI_ALIGN_KWARGS)
        self.linear = nnx.Linear(OUTPUT_SIZE * OUTPUT_SIZE * 3, 5, rngs=rngs)

    def __call__(self, features: jax.Array, boxes: jax.Array) -> jax.Array:
        pooled = self.pool(features, boxes)
        return self.linear(pooled.reshape(*pooled.shape[:2], -1))


def test_inside_a_bigger_module():
    head = _Head(nnx.Rngs(0))
    params = nnx.state(head, nnx.Param)
    assert set(params) == {"linear"}  # the pooling adds no parameters

    @nnx.jit
    def step(head, features, boxes):
        def loss(head):
            out = head(features, boxes)
            return out.sum(), out

        return nnx.value_and_grad(loss, has_aux=True)(head)

    (_, out), grads = step(head, FEATURES, BOXES)
    pooled = pool(FEATURES, BOXES).reshape(2, 3, -1)
    kernel, bias = head.linear.kernel[...], head.linear.bias[...]
    chex.assert_trees_all_close(out, pooled @ kernel + bias, rtol=1e-6, atol=1e-6)
    # d sum(x @ W + b) / dW[i, j] = sum over boxes of x[:, i], for every output j.
    want_kernel = jnp.broadcast_to(pooled.reshape(-1, pooled.shape[-1]).sum(0)[:, None], kernel.shape)
    chex.assert_trees_all_close(grads["linear"]["kernel"][...], want_kernel, rtol=1e-6, atol=1e-6)
