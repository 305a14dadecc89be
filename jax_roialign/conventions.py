"""The named conventions of RoIAlign, reduced to one canonical specification.

Every framework flag (torchvision's ``aligned``, ONNX's
``coordinate_transformation_mode`` and opset, mmcv's ``pool_mode``, Detectron2's
ROIAlignV2, ...) maps onto the fields of :class:`RoIAlignSpec`; the math in
``jax_roialign.xla`` and ``jax_roialign.kernels`` sees nothing else.  The
arithmetic of each field is spelled out in ``docs/conventions.md`` section 1.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Literal

Mode = Literal["avg", "max", "corner_max"]
MODES: tuple[str, ...] = ("avg", "max", "corner_max")


def output_size_pair(output_size: int | tuple[int, int], name: str = "output_size") -> tuple[int, int]:
    """(out_h, out_w) from an int or a pair; each must be an integer >= 1."""
    if isinstance(output_size, numbers.Integral) and not isinstance(output_size, bool):
        pair = (int(output_size), int(output_size))
    elif isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        pair = tuple(output_size)
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {output_size!r}")
    for v in pair:
        if not isinstance(v, numbers.Integral) or isinstance(v, bool):
            raise TypeError(f"{name} must hold integers, got {output_size!r}")
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {output_size!r}")
    return int(pair[0]), int(pair[1])


def check_spatial_scale(spatial_scale: float, name: str = "spatial_scale") -> float:
    """spatial_scale as a Python float; it must be a finite positive number."""
    if isinstance(spatial_scale, bool) or not isinstance(spatial_scale, numbers.Real):
        raise TypeError(f"{name} must be a Python number, got {spatial_scale!r}")
    value = float(spatial_scale)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {spatial_scale!r}")
    return value


def check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    """value if it is one of choices, else a ValueError naming the argument."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_bool(value: object, name: str) -> bool:
    """value as a bool; it must be a bool (or 0 / 1)."""
    if not isinstance(value, (bool, numbers.Integral)) or value not in (True, False):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def check_finite(value: object, name: str) -> float:
    """value as a Python float; it must be a finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def scale_pair(scale: float | tuple[float, float], name: str = "scale") -> tuple[float, float]:
    """(scale_h, scale_w) from a number or a pair; each must be finite and > 0."""
    pair = tuple(scale) if isinstance(scale, (tuple, list)) else (scale, scale)
    if len(pair) != 2:
        raise ValueError(f"{name} must be a number or a pair of numbers, got {scale!r}")
    return check_spatial_scale(pair[0], name), check_spatial_scale(pair[1], name)


@dataclasses.dataclass(frozen=True)
class RoIAlignSpec:
    """Canonical RoIAlign parameters (hashable: it is a static argument under jit).

    Attributes:
      output_size: (out_h, out_w), each >= 1.
      spatial_scale: maps box coordinates to feature-map coordinates (e.g. 1/16).
      sampling_ratio: samples per bin and axis; <= 0 means adaptive,
        ``ceil(roi_size / output_size)`` per box and axis, exact for any box.
      aligned: True is half-pixel (subtract 0.5 after scaling); False is legacy
        (no offset, box size clamped to >= 1 feature pixel).
      mode: "avg" (mean of the bin's samples, out-of-range samples counted as 0),
        "max" (max of interpolated samples: mmcv, the paper) or "corner_max"
        (onnxruntime's max of weighted corner terms).
    """

    output_size: tuple[int, int]
    spatial_scale: float = 1.0
    sampling_ratio: int = 0
    aligned: bool = True
    mode: Mode = "avg"

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_size", output_size_pair(self.output_size))
        object.__setattr__(self, "spatial_scale", check_spatial_scale(self.spatial_scale))
        ratio = self.sampling_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, numbers.Integral):
            raise TypeError(f"sampling_ratio must be an int, got {ratio!r}")
        object.__setattr__(self, "sampling_ratio", int(ratio))
        if not isinstance(self.aligned, (bool, int)) or self.aligned not in (True, False):
            raise TypeError(f"aligned must be a bool, got {self.aligned!r}")
        object.__setattr__(self, "aligned", bool(self.aligned))
        check_choice(self.mode, "mode", MODES)


ANGLE_UNITS: tuple[str, ...] = ("degrees", "radians")


@dataclasses.dataclass(frozen=True)
class RotatedSpec:
    """Canonical rotated RoIAlign parameters (``docs/conventions.md`` section 5); hashable.

    Attributes:
      output_size: (out_h, out_w), each >= 1.
      spatial_scale: maps box coordinates to feature-map coordinates.
      sampling_ratio: samples per bin and axis; <= 0 is adaptive, ``ceil(size / output_size)``
        per box and axis (box frame), exact for any box.
      aligned: True is half-pixel (the centre moves by -0.5 after scaling: Detectron2,
        mmcv's default); False is mmcv's legacy form (no offset, width and height clamped
        to >= 1 feature pixel about the centre).
      clockwise: negate the angle before use (mmcv's ``clockwise=True``).
      angle_unit: "degrees" (Detectron2, this library's ops) or "radians" (mmcv).
      float32_grid: round the adaptive grid's quotient to float32 before its ceil, as
        mmcv's ``ceilf`` does (changes float64 results only).
    """

    output_size: tuple[int, int]
    spatial_scale: float = 1.0
    sampling_ratio: int = 0
    aligned: bool = True
    clockwise: bool = False
    angle_unit: str = "degrees"
    float32_grid: bool = False

    def __post_init__(self) -> None:
        base = RoIAlignSpec(self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)
        for field in ("output_size", "spatial_scale", "sampling_ratio", "aligned"):
            object.__setattr__(self, field, getattr(base, field))
        for field in ("clockwise", "float32_grid"):
            value = getattr(self, field)
            if not isinstance(value, (bool, int)) or value not in (True, False):
                raise TypeError(f"{field} must be a bool, got {value!r}")
            object.__setattr__(self, field, bool(value))
        check_choice(self.angle_unit, "angle_unit", ANGLE_UNITS)
