"""The XLA path: plain jax.numpy implementations, the reference for every other path."""

from jax_roialign.xla.crop_and_resize import crop_and_resize
from jax_roialign.xla.ps_roi import ps_roi_align, ps_roi_pool
from jax_roialign.xla.roi_align import roi_align
from jax_roialign.xla.roi_align_rotated import roi_align_rotated
from jax_roialign.xla.roi_pool import roi_pool

__all__ = ["crop_and_resize", "ps_roi_align", "ps_roi_pool", "roi_align", "roi_align_rotated", "roi_pool"]
