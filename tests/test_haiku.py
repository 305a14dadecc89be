"""jax_roialign.haiku: the modules equal the functional API, under jit, vmap and grad, inside a transformed model."""

from __future__ import annotations

import importlib
import sys

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
    assert_jit_matches,
    assert_vmap_matches,
    pool,
    recording,
)

hk = pytest.importorskip("haiku")
jrh = pytest.importorskip("jax_roialign.haiku")


def _module_class(kind: str) -> type[hk.Module]:
    return jrh.RoIAlign if kind == "roi_align" else jrh.MultiScaleRoIAlign


def _forward(kind: str, **kwargs):
    """(features, boxes, batch_indices=None) -> output of the kind's module (test defaults unless kwargs)."""
    kwargs = kwargs or {"output_size": OUTPUT_SIZE, **(ROI_ALIGN_KWARGS if kind == "roi_align" else MULTISCALE_KWARGS)}
    return lambda *args, **call_kwargs: _module_class(kind)(**kwargs)(*args, **call_kwargs)


def _transformed(kind: str, **kwargs) -> hk.Transformed:
    return hk.without_apply_rng(hk.transform(_forward(kind, **kwargs)))


def _applied(kind: str):
    """(features, boxes) -> output of the kind's module, applied with its (empty) parameters."""
    apply = _transformed(kind).apply
    return lambda features, boxes: apply({}, features, boxes)


def test_import_without_haiku_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "haiku", None)  # makes `import haiku` raise ImportError
    monkeypatch.delitem(sys.modules, "jax_roialign.haiku")
    with pytest.raises(ImportError, match=r'pip install "jax-roialign\[haiku\]"'):
        importlib.import_module("jax_roialign.haiku")


@pytest.mark.parametrize("kind", KINDS)
def test_creates_no_parameters_or_state(kind):
    features, _ = KINDS[kind]
    params, state = hk.transform_with_state(_forward(kind)).init(jax.random.key(0), features, BOXES)
    assert params == {} and state == {}


def test_matches_functional_api():
    apply = _transformed("roi_align").apply
    want = pool(FEATURES, BOXES)
    chex.assert_trees_all_equal(apply({}, FEATURES, BOXES), want)
    flat = apply({}, FEATURES, BOXES.reshape(-1, 4), batch_indices=BATCH_INDICES)
    chex.assert_trees_all_equal(flat, want.reshape(flat.shape))


@pytest.mark.parametrize("levels", ["sequence", "dict"])
@pytest.mark.parametrize("scales", ["given", "inferred"])
def test_multiscale_matches_functional_api(levels, scales):
    features = LEVELS if levels == "sequence" else {"p2": LEVELS[0], "p3": LEVELS[1]}
    kwargs = dict(MULTISCALE_KWARGS)
    if scales == "inferred":
        kwargs["spatial_scales"] = None
        kwargs["image_size"] = IMAGE_SIZE
    got = _transformed("multiscale", output_size=OUTPUT_SIZE, **kwargs).apply({}, features, BOXES)
    chex.assert_trees_all_equal(got, jr.multiscale_roi_align(features, BOXES, OUTPUT_SIZE, **kwargs))


def test_forwards_every_keyword(monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(module_config, "roi_align", recording(jr.roi_align, calls))
    monkeypatch.setattr(module_config, "multiscale_roi_align", recording(jr.multiscale_roi_align, calls))
    _transformed("roi_align", **ROI_ALIGN_CONFIG).apply({}, FEATURES, BOXES, batch_indices=BATCH_INDICES)
    _transformed("multiscale", **MULTISCALE_CONFIG).apply({}, LEVELS, BOXES, batch_indices=BATCH_INDICES, valid=VALID)
    common = {"boxes": BOXES, "batch_indices": BATCH_INDICES}
    assert calls[0] == {**ROI_ALIGN_CONFIG, **common, "features": FEATURES}
    assert calls[1] == {**MULTISCALE_CONFIG, **common, "features": LEVELS, "valid": VALID}


@pytest.mark.parametrize("multiscale,kwargs,error,match", BAD_ARGUMENTS)
def test_rejects_bad_arguments_at_construction(multiscale, kwargs, error, match):
    module_class = _module_class("multiscale" if multiscale else "roi_align")
    with pytest.raises(error, match=match):
        hk.transform(lambda: module_class(**kwargs)).init(jax.random.key(0))


@pytest.mark.parametrize("kind", KINDS)
def test_vmap(kind):
    assert_vmap_matches(kind, _applied(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_grad_wrt_features_and_boxes(kind):
    assert_grads_match(kind, _applied(kind))


def test_jit():
    assert_jit_matches(_applied("roi_align"), _applied("multiscale"))


def _head(features: jax.Array, boxes: jax.Array) -> jax.Array:
    """RoIAlign then a Linear layer: the box head of a detector, in miniature."""
    pooled = jrh.RoIAlign(OUTPUT_SIZE, **ROI_ALIGN_KWARGS)(features, boxes)
    return hk.Linear(5)(pooled.reshape(*pooled.shape[:2], -1))


def test_inside_a_transformed_function():
    head = hk.without_apply_rng(hk.transform(_head))
    params = head.init(jax.random.key(0), FEATURES, BOXES)
    assert set(params) == {"linear"}  # the pooling adds no parameters

    def loss(params, features, boxes):
        out = head.apply(params, features, boxes)
        return out.sum(), out

    (_, out), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params, FEATURES, BOXES)
    pooled = pool(FEATURES, BOXES).reshape(2, 3, -1)
    kernel, bias = params["linear"]["w"], params["linear"]["b"]
    chex.assert_trees_all_close(out, pooled @ kernel + bias, rtol=1e-6, atol=1e-6)
    # d sum(x @ W + b) / dW[i, j] = sum over boxes of x[:, i], for every output j.
    want_kernel = jnp.broadcast_to(pooled.reshape(-1, pooled.shape[-1]).sum(0)[:, None], kernel.shape)
    chex.assert_trees_all_close(grads["linear"]["w"], want_kernel, rtol=1e-6, atol=1e-6)
