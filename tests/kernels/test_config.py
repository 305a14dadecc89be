"""BlockSizes: validation with clear errors, and the helpers that size blocks."""

from __future__ import annotations

import pytest
from jax_roialign.kernels import config


def test_defaults_are_hardware_widths():
    assert config.BlockSizes() == config.BlockSizes(channels=128, tile_rows=8, tile_cols=8)


@pytest.mark.parametrize("field", ["channels", "tile_rows", "tile_cols"])
@pytest.mark.parametrize("value", [0, -8, 3, 96])
def test_sizes_must_be_powers_of_two(field, value):
    with pytest.raises(ValueError, match=rf"BlockSizes\.{field} must be a power of two >= 1, got {value}"):
        config.BlockSizes(**{field: value})


@pytest.mark.parametrize("value", [8.0, True, "8", None])
def test_sizes_must_be_ints(value):
    with pytest.raises(TypeError, match=r"BlockSizes\.tile_cols must be an int"):
        config.BlockSizes(tile_cols=value)


@pytest.mark.parametrize("channels,block,want", [(3, 128, 4), (128, 128, 128), (256, 128, 128), (5, 2, 2), (1, 4, 1)])
def test_channel_block_is_a_power_of_two_no_wider_than_needed(channels, block, want):
    assert config.BlockSizes(channels=block).channel_block(channels) == want


@pytest.mark.parametrize("value,want", [(0, 1), (1, 1), (2, 2), (3, 4), (7, 8), (8, 8), (9, 16)])
def test_next_power_of_two(value, want):
    assert config.next_power_of_two(value) == want


@pytest.mark.parametrize("value,multiple,want", [(0, 8, 0), (1, 8, 8), (8, 8, 8), (9, 4, 12), (14, 1, 14)])
def test_round_up(value, multiple, want):
    assert config.round_up(value, multiple) == want
