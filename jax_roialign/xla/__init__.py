"""The XLA path: plain jax.numpy implementations, the reference for every other path."""

from jax_roialign.xla.crop_and_resize import crop_and_resize
from jax_roialign.xla.roi_align import roi_align
from jax_roialign.xla.roi_pool import roi_pool

__all__ = ["crop_and_resize", "roi_align", "roi_pool"]
