"""Target selection, the conditions under which the kernels decline, and the TPU data movement."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax_roialign.kernels import target

import jax_roialign as jr
from jax_roialign import kernels
from jax_roialign.conventions import RoIAlignSpec
from tests import cases


@pytest.mark.parametrize(
    "platform,want",
    [
        ("cpu", target.Target("triton", interpret=True)),
        ("cuda", target.Target("triton")),
        ("rocm", target.Target("triton")),
        ("tpu", target.Target("mosaic")),
    ],
)
def test_platform_target(platform, want):
    assert target.platform_target(platform) == want


def test_gpu_without_the_triton_lowering_declines(monkeypatch):
    monkeypatch.setattr(target, "_triton_available", lambda: False)
    with pytest.raises(NotImplementedError, match="Triton"):
        target.platform_target("cuda")


def test_target_validation():
    with pytest.raises(ValueError, match="Target.backend must be one of"):
        target.Target("cuda")
    with pytest.raises(TypeError, match="Target.interpret must be a bool, got 1"):
        target.Target("triton", interpret=1)


def test_compiled_mosaic_declines_float64_only():
    with pytest.raises(NotImplementedError, match="float64"):
        target.check_supported(target.Target("mosaic"), jnp.float64)
    target.check_supported(target.Target("mosaic"), jnp.bfloat16)
    target.check_supported(target.Target("mosaic", interpret=True), jnp.float64)
    target.check_supported(target.Target("triton"), jnp.float64)


def test_tpu_channel_blocks_that_split_the_channels_are_whole_lane_widths():
    mosaic = target.Target("mosaic")
    target.check_block_sizes(mosaic, kernels.BlockSizes(channels=64), 64)  # one block: the whole axis
    target.check_block_sizes(mosaic, kernels.BlockSizes(channels=128), 300)
    target.check_block_sizes(target.Target("mosaic", interpret=True), kernels.BlockSizes(channels=64), 256)
    target.check_block_sizes(target.Target("triton"), kernels.BlockSizes(channels=64), 256)
    with pytest.raises(ValueError, match="multiple of 128 on TPU when it splits the 256 channels, got 64"):
        target.check_block_sizes(mosaic, kernels.BlockSizes(channels=64), 256)


@pytest.mark.usefixtures("x64")
def test_float64_on_tpu_falls_back_to_xla_before_tracing(monkeypatch):
    """impl=None on a TPU with float64 features: the kernels decline and XLA's result comes back."""
    x = jnp.asarray(cases.random_features(0, (1, 6, 7, 2)))
    boxes = jnp.asarray([[0.5, 1.0, 5.0, 4.5]])
    want = jr.roi_align(x, boxes, 2, impl="xla")
    monkeypatch.setattr(jax, "default_backend", lambda: "tpu")
    chex.assert_trees_all_equal(jr.roi_align(x, boxes, 2), want)


def test_arguments_are_checked():
    x, boxes, batch = jnp.ones((1, 4, 4, 1)), jnp.ones((1, 4)), jnp.zeros((1,), jnp.int32)
    spec = RoIAlignSpec((2, 2))
    with pytest.raises(TypeError, match="block_sizes must be a BlockSizes"):
        kernels.roi_align(x, boxes, batch, spec, block_sizes=(8, 8, 8))
    with pytest.raises(TypeError, match="target must be a Target"):
        kernels.roi_align(x, boxes, batch, spec, target="mosaic")


@pytest.mark.parametrize("mode", ["avg", "corner_max"])
def test_mosaic_data_movement_interpreted_matches_triton(mode):
    """The TPU variant (SMEM scalars, HBM arrays read by DMA into VMEM) computes what the GPU variant does."""
    x = jnp.asarray(cases.random_features(1, (2, 6, 7, 3), "float32"), jnp.float32)
    boxes = np.concatenate([cases.edge_boxes(6, 7, 1.0)[::3], cases.random_boxes(1, 2, 6, 7, 1.0)])
    boxes = jnp.asarray(boxes, jnp.float32)
    batch = jnp.arange(len(boxes), dtype=jnp.int32) % 2
    spec = RoIAlignSpec((2, 3), sampling_ratio=2, mode=mode)
    g = jnp.asarray(np.random.default_rng(2).standard_normal((len(boxes), 2, 3, 3)), jnp.float32)
    blocks = kernels.BlockSizes(channels=4, tile_rows=4, tile_cols=4)

    def run(backend):
        kw = dict(block_sizes=blocks, target=target.Target(backend, interpret=True))
        out, pullback = jax.vjp(lambda x: kernels.roi_align(x, boxes, batch, spec, **kw), x)
        return out, pullback(g)[0]

    chex.assert_trees_all_equal(run("mosaic"), run("triton"))
