"""The kernels of RoIAlign (installed as ``jax_roialign.kernels``): Pallas for GPU and TPU, C++ for the CPU.

:func:`roi_align` (Pallas) and :func:`cpu_roi_align` (the CPU kernels) have the contract
of ``jax_roialign.xla.roi_align``; the dispatcher in ``jax_roialign.ops`` calls them for
``impl="pallas"`` / ``impl="cpu"``.  ``impl=None`` runs the CPU kernels on a CPU where
they build (:func:`cpu_available`), and the Pallas kernels only on a device kind listed
in ``verified_devices.json`` (:func:`is_verified`).  The Pallas kernels exist for
Pallas' Triton (GPU) and Mosaic (TPU) lowerings; they compile ahead of time for H100 and
TPU v4 to 7x (tests/kernels/test_aot.py) and have run in Pallas interpret mode only; no
speed is claimed for them.
"""

from .config import BlockSizes
from .cpu import roi_align as cpu_roi_align
from .cpu_library import CpuKernelUnavailable
from .cpu_library import available as cpu_available
from .roi_align import roi_align, roi_align_jvp
from .target import Target, platform_target, supported
from .verified import is_verified

__all__ = [
    "BlockSizes",
    "CpuKernelUnavailable",
    "Target",
    "cpu_available",
    "cpu_roi_align",
    "is_verified",
    "platform_target",
    "roi_align",
    "roi_align_jvp",
    "supported",
]
