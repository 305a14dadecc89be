"""Target selection, the conditions under which the kernels decline, and the TPU data movement."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax_roialign.kernels import target, verified

from jax_roialign import kernels, ops
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


def test_default_block_sizes_per_backend():
    assert target.default_block_sizes(target.Target("triton")) == target.DEFAULT_BLOCK_SIZES["triton"]
    assert target.default_block_sizes(target.Target("mosaic", interpret=True)) == target.DEFAULT_BLOCK_SIZES["mosaic"]
    for backend in target.BACKENDS:
        target.check_block_sizes(target.Target(backend), target.DEFAULT_BLOCK_SIZES[backend], 256)


def test_target_validation():
    with pytest.raises(ValueError, match="Target.backend must be one of"):
        target.Target("cuda")
    with pytest.raises(TypeError, match="Target.interpret must be a bool, got 1"):
        target.Target("triton", interpret=1)


def test_mosaic_declines_float64_only():
    for interpret in (False, True):
        with pytest.raises(NotImplementedError, match="float64"):
            target.check_supported(target.Target("mosaic", interpret=interpret), jnp.float64)
    target.check_supported(target.Target("mosaic"), jnp.bfloat16)
    target.check_supported(target.Target("triton", interpret=True), jnp.float64)
    target.check_supported(target.Target("triton"), jnp.float64)


def test_tpu_channel_blocks_that_split_the_channels_are_whole_lane_widths():
    mosaic = target.Target("mosaic")
    target.check_block_sizes(mosaic, kernels.BlockSizes(channels=64), 64)  # one block: the whole axis
    target.check_block_sizes(mosaic, kernels.BlockSizes(channels=128), 300)
    target.check_block_sizes(target.Target("mosaic", interpret=True), kernels.BlockSizes(channels=64), 256)
    target.check_block_sizes(target.Target("triton"), kernels.BlockSizes(channels=64), 256)
    with pytest.raises(ValueError, match="multiple of 128 on TPU when it splits the 256 channels, got 64"):
        target.check_block_sizes(mosaic, kernels.BlockSizes(channels=64), 256)


class _FakeDevice:
    def __init__(self, platform: str, device_kind: str):
        self.platform, self.device_kind = platform, device_kind


@pytest.mark.usefixtures("x64")
def test_impl_none_on_a_verified_tpu_takes_xla_for_float64(monkeypatch):
    """impl=None on a verified TPU: float64 features (which Mosaic lacks) take XLA, float32 ones the kernels."""
    monkeypatch.setattr(jax, "devices", lambda *a: [_FakeDevice("tpu", "TPU v5 lite")])
    monkeypatch.setattr(verified, "verified_devices", lambda: {"TPU v5 lite": {}})
    assert ops._impl_order(None, jnp.float64) == ("xla",)
    assert ops._impl_order(None, jnp.float32) == ("pallas", "xla")
    monkeypatch.setattr(verified, "verified_devices", lambda: {})
    assert ops._impl_order(None, jnp.float32) == ("xla",)
    assert ops._impl_order("pallas", jnp.float64) == ("pallas",)


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
