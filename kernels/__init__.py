"""Pallas kernels for RoIAlign (installed as ``jax_roialign.kernels``).

:func:`roi_align` has the contract of ``jax_roialign.xla.roi_align``; the dispatcher in
``jax_roialign.ops`` calls it for ``impl="pallas"`` (and, with ``impl=None``, on GPU
and TPU, falling back to XLA when it raises NotImplementedError).  The kernels are
written for Pallas' Triton (GPU) and Mosaic (TPU) lowerings and verified in Pallas
interpret mode only; no speed is claimed.
"""

from .config import BlockSizes
from .roi_align import roi_align, roi_align_jvp
from .target import Target, platform_target

__all__ = ["BlockSizes", "Target", "platform_target", "roi_align", "roi_align_jvp"]
