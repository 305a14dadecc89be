"""jax_roialign: RoIAlign for JAX with every framework's convention named and reproduced."""

from jax_roialign.conventions import RoIAlignSpec, RotatedSpec
from jax_roialign.multiscale import multiscale_roi_align
from jax_roialign.ops import paste_masks, ps_roi_align, ps_roi_pool, resize, roi_align, roi_align_rotated, roi_pool

__all__ = [
    "RoIAlignSpec",
    "RotatedSpec",
    "multiscale_roi_align",
    "paste_masks",
    "ps_roi_align",
    "ps_roi_pool",
    "resize",
    "roi_align",
    "roi_align_rotated",
    "roi_pool",
]
__version__ = "0.1.0"
