"""Tuning knobs of the Pallas RoIAlign kernels: one frozen, validated dataclass."""

from __future__ import annotations

import dataclasses
import numbers


def _is_power_of_two(value: int) -> bool:
    return value >= 1 and value & (value - 1) == 0


@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Block and tile sizes of the Pallas RoIAlign kernels.

    They change how the work is cut, not what is computed: results agree to float
    rounding across block sizes (the feature gradient is bitwise equal; see
    ``tests/kernels/test_roi_align.py``).  The defaults are NOT tuned by measurement
    (no GPU or TPU was available); they follow the hardware's natural widths.

    Attributes:
      channels: channels handled by one program (the last grid axis of every
        kernel).  Default 128: one TPU lane width, 512 contiguous bytes per
        float32 tap read on a GPU.  A map with fewer channels uses the next power
        of two at or above its channel count instead.
      tile_rows: rows of the feature-gradient tile one backward program owns.
        Default 8 (one TPU sublane group).
      tile_cols: columns per window tile: the avg forward pass reads a box's
        columns this many at a time, and backward tiles are
        ``tile_rows x tile_cols``.  Default 8.

    Every size must be a power of two: Triton (the GPU lowering) only holds arrays
    of power-of-two sizes.
    """

    channels: int = 128
    tile_rows: int = 8
    tile_cols: int = 8

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"BlockSizes.{field.name} must be an int, got {value!r}")
            if not _is_power_of_two(int(value)):
                raise ValueError(f"BlockSizes.{field.name} must be a power of two >= 1, got {value!r}")
            object.__setattr__(self, field.name, int(value))

    def channel_block(self, channels: int) -> int:
        """Channels per program for a map with this many channels (a power of two)."""
        return min(self.channels, next_power_of_two(channels))


def next_power_of_two(value: int) -> int:
    """Smallest power of two >= value (1 for value <= 1)."""
    return 1 << max(int(value) - 1, 0).bit_length()


def round_up(value: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= value."""
    return -(-value // multiple) * multiple
