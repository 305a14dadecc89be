"""jax_roialign.flax (linen): the modules equal the functional API, under jit, vmap and grad, inside a bigger model."""

from __future__ import annotations

import importlib
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_roialign as jr
from jax_roialign import module_config
from jax_roialign.multiscale import box_levels
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
    assert_jit_matches,
    assert_vmap_matches,
    pool,
    recording,
)

nn = pytest.importorskip("flax.linen")
jrf = pytest.importorskip("jax_roialign.flax")
linen = jrf.linen


@pytest.mark.parametrize("module", ["jax_roialign.flax", "jax_roialign.flax.linen", "jax_roialign.flax.nnx"])
def test_import_without_flax_names_the_extra(monkeypatch, module):
    monkeypatch.setitem(sys.modules, "flax", None)  # makes `import flax` raise ImportError
    for name in ("jax_roialign.flax", "jax_roialign.flax.linen", "jax_roialign.flax.nnx"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ImportError, match=r'pip install "jax-roialign\[flax\]"'):
        importlib.import_module(module)


def test_public_names():
    assert jrf.RoIAlign is linen.RoIAlign and jrf.MultiScaleRoIAlign is linen.MultiScaleRoIAlign


def test_matches_functional_api():
    module = jrf.RoIAlign(OUTPUT_SIZE, **ROI_ALIGN_KWARGS)
    assert jax.tree.leaves(module.init(jax.random.key(0), FEATURES, BOXES)) == []
    want = jr.roi_align(FEATURES, BOXES, OUTPUT_SIZE, **ROI_ALIGN_KWARGS)
    chex.assert_trees_all_equal(module.apply({}, FEATURES, BOXES), want)
    flat = module.apply({}, FEATURES, BOXES.reshape(-1, 4), batch_indices=BATCH_INDICES)
    chex.assert_trees_all_equal(flat, want.reshape(flat.shape))


@pytest.mark.parametrize("levels", ["sequence", "dict"])
@pytest.mark.parametrize("scales", ["given", "inferred"])
def test_multiscale_matches_functional_api(levels, scales):
    features = LEVELS if levels == "sequence" else {"p2": LEVELS[0], "p3": LEVELS[1]}
    kwargs = dict(MULTISCALE_KWARGS)
    if scales == "inferred":
        kwargs["spatial_scales"] = None
        kwargs["image_size"] = IMAGE_SIZE
    module = jrf.MultiScaleRoIAlign(OUTPUT_SIZE, **kwargs)
    assert jax.tree.leaves(module.init(jax.random.key(0), features, BOXES)) == []
    got = module.apply({}, features, BOXES)
    chex.assert_trees_all_equal(got, jr.multiscale_roi_align(features, BOXES, OUTPUT_SIZE, **kwargs))
    # The boxes span both levels, so a level rule that ignored canonical_size/level would differ.
    level = box_levels(BOXES.reshape(-1, 4), min_level=2, max_level=3, canonical_size=32.0, canonical_level=3)
    assert set(np.asarray(level).tolist()) == {0, 1}


def test_forwards_every_keyword(monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(module_config, "roi_align", recording(jr.roi_align, calls))
    monkeypatch.setattr(module_config, "multiscale_roi_align", recording(jr.multiscale_roi_align, calls))
    jrf.RoIAlign(**ROI_ALIGN_CONFIG).apply({}, FEATURES, BOXES, batch_indices=BATCH_INDICES)
    jrf.MultiScaleRoIAlign(**MULTISCALE_CONFIG).apply({}, LEVELS, BOXES, batch_indices=BATCH_INDICES, valid=VALID)
    common = {"boxes": BOXES, "batch_indices": BATCH_INDICES}
    assert calls[0] == {**ROI_ALIGN_CONFIG, **common, "features": FEATURES}
    assert calls[1] == {**MULTISCALE_CONFIG, **common, "features": LEVELS, "valid": VALID}


@pytest.mark.parametrize("multiscale,kwargs,error,match", BAD_ARGUMENTS)
def test_rejects_bad_arguments_at_construction(multiscale, kwargs, error, match):
    with pytest.raises(error, match=match):
        (jrf.MultiScaleRoIAlign if multiscale else jrf.RoIAlign)(**kwargs)


def _module(kind: str) -> nn.Module:
    if kind == "roi_align":
        return jrf.RoIAlign(OUTPUT_SIZE, **ROI_ALIGN_KWARGS)
    return jrf.MultiScaleRoIAlign(OUTPUT_SIZE, **MULTISCALE_KWARGS)


def _applied(kind: str):
    """(features, boxes) -> output of the kind's module, applied with its (empty) variables."""
    module = _module(kind)
    return lambda features, boxes: module.apply({}, features, boxes)


@pytest.mark.parametrize("kind", KINDS)
def test_vmap(kind):
    assert_vmap_matches(kind, _applied(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_grad_wrt_features_and_boxes(kind):
    assert_grads_match(kind, _applied(kind))


def test_jit():
    assert_jit_matches(_applied("roi_align"), _applied("multiscale"))


class _Head(nn.Module):
    """RoIAlign then a Dense layer: the box head of a detector, in miniature."""

    @nn.compact
    def __call__(self, features: jax.Array, boxes: jax.Array) -> jax.Array:
        pooled = jrf.RoIAlign(OUTPUT_SIZE, **ROI_ALIGN_KWARGS)(features, boxes)
        return nn.Dense(5)(pooled.reshape(*pooled.shape[:2], -1))


def test_inside_a_bigger_module():
    head = _Head()
    params = head.init(jax.random.key(0), FEATURES, BOXES)
    assert set(params["params"]) == {"Dense_0"}  # the pooling adds no parameters

    def loss(params, features, boxes):
        out = head.apply(params, features, boxes)
        return out.sum(), out

    (_, out), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params, FEATURES, BOXES)
    pooled = pool(FEATURES, BOXES).reshape(2, 3, -1)
    dense = params["params"]["Dense_0"]
    chex.assert_trees_all_close(out, pooled @ dense["kernel"] + dense["bias"], rtol=1e-6, atol=1e-6)
    # d sum(x @ W + b) / dW[i, j] = sum over boxes of x[:, i], for every output j.
    want_kernel = jnp.broadcast_to(pooled.reshape(-1, pooled.shape[-1]).sum(0)[:, None], dense["kernel"].shape)
    chex.assert_trees_all_close(grads["params"]["Dense_0"]["kernel"], want_kernel, rtol=1e-6, atol=1e-6)
