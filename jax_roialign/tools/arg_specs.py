"""Named workloads: the shapes that the benchmarks time and the tests exercise.

Every workload is a frozen description (map, boxes, op parameters) plus a seeded
generator of its arrays, so a benchmark, a scaling sweep and a test that names the same
workload see the same problem.  ``op`` names what it runs: a box pooling op
(:class:`Workload`: "roi_align", "roi_align_rotated" or "ps_roi_align"), "resize"
(:class:`ResizeWorkload`) or "paste_masks" (:class:`PasteWorkload`).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax.numpy as jnp
import numpy as np

# The ops a workload may time: jax_roialign's function of that name.
OPS: tuple[str, ...] = ("roi_align", "roi_align_rotated", "ps_roi_align")
MODES: tuple[str, ...] = ("avg", "max", "corner_max")


@dataclasses.dataclass(frozen=True)
class Workload:
    """One pooling problem: NHWC features (n, height, width, channels) and num_boxes boxes for op.

    Boxes are [x1, y1, x2, y2] in input-image coordinates, uniformly placed over the
    image the map covers (height / spatial_scale by width / spatial_scale), with sides
    uniform in [min_side, max_side] pixels, assigned to images uniformly at random; for
    ``roi_align_rotated`` the same boxes as [cx, cy, w, h, angle] with angles uniform in
    [-90, 90) degrees.  ``ps_roi_align`` pools channels / output_size**2 channels.
    """

    name: str
    n: int
    height: int
    width: int
    channels: int
    num_boxes: int
    output_size: int
    spatial_scale: float
    sampling_ratio: int
    min_side: float
    max_side: float
    aligned: bool = True
    op: str = "roi_align"
    mode: str = "avg"

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"Workload.op must be one of {OPS}, got {self.op!r}")
        if self.mode not in MODES or (self.mode != "avg" and self.op != "roi_align"):
            raise ValueError(f"Workload.mode must be one of {MODES} (roi_align) or 'avg', got {self.mode!r}")
        if self.op == "ps_roi_align" and self.channels % self.output_size**2:
            raise ValueError(
                f"Workload.channels must be a multiple of output_size**2 for ps_roi_align, got {self.channels!r}"
            )
        for field in ("n", "height", "width", "channels", "output_size"):
            if getattr(self, field) < 1:
                raise ValueError(f"Workload.{field} must be >= 1, got {getattr(self, field)!r}")
        if self.num_boxes < 0:
            raise ValueError(f"Workload.num_boxes must be >= 0, got {self.num_boxes!r}")
        if not 0 < self.min_side <= self.max_side:
            raise ValueError(f"Workload needs 0 < min_side <= max_side, got {self.min_side!r}, {self.max_side!r}")

    def with_boxes(self, num_boxes: int) -> Workload:
        """The same workload with another number of boxes (for scaling sweeps)."""
        return dataclasses.replace(self, num_boxes=num_boxes)

    def kwargs(self) -> dict:
        """Keyword arguments of the workload's op (jax_roialign.<op>) besides batch_indices."""
        if self.op == "ps_roi_align":  # always half-pixel
            return {"spatial_scale": self.spatial_scale, "sampling_ratio": self.sampling_ratio}
        kwargs = {"spatial_scale": self.spatial_scale, "sampling_ratio": self.sampling_ratio, "aligned": self.aligned}
        return kwargs | ({"mode": self.mode} if self.op == "roi_align" else {})

    @property
    def output_channels(self) -> int:
        """Channels of the output: channels, or channels / output_size**2 for ps_roi_align."""
        return self.channels // self.output_size**2 if self.op == "ps_roi_align" else self.channels

    def arrays(self, seed: int = 0, dtype: jnp.dtype = jnp.float32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(features (n, H, W, C), boxes (K, 4), batch_indices (K,) int32) as NumPy arrays."""
        rng = np.random.default_rng(seed)
        features = rng.standard_normal((self.n, self.height, self.width, self.channels)).astype(dtype)
        image_h, image_w = self.height / self.spatial_scale, self.width / self.spatial_scale
        side = rng.uniform(self.min_side, self.max_side, (self.num_boxes, 2))
        corner = rng.uniform(0.0, 1.0, (self.num_boxes, 2)) * np.maximum([image_w, image_h] - side, 0.0)
        boxes = np.concatenate([corner, corner + side], axis=1).astype(np.float32)
        batch_indices = rng.integers(0, self.n, self.num_boxes).astype(np.int32)
        if self.op == "roi_align_rotated":
            angles = rng.uniform(-90.0, 90.0, (self.num_boxes, 1))
            boxes = np.concatenate([corner + side / 2, side, angles], axis=1).astype(np.float32)
        return features, boxes, batch_indices

    def output_bytes(self, itemsize: int = 4) -> int:
        return self.num_boxes * self.output_size**2 * self.output_channels * itemsize

    def feature_bytes(self, itemsize: int = 4) -> int:
        return self.n * self.height * self.width * self.channels * itemsize


@dataclasses.dataclass(frozen=True)
class ResizeWorkload:
    """One resize: NHWC images (n, height, width, channels) to (out_height, out_width).

    method "nearest" or "bilinear", with PyTorch's F.interpolate conventions for a
    scale factor (nearest: ``floor(o / 2)``; bilinear: half-pixel, align_corners=False),
    which are ``jax_roialign.resize``'s ``coordinate_mode="asymmetric",
    nearest_mode="floor"`` and its default half-pixel bilinear.
    """

    op: ClassVar[str] = "resize"

    name: str
    n: int
    height: int
    width: int
    channels: int
    out_height: int
    out_width: int
    method: str

    def kwargs(self) -> dict:
        """Keyword arguments of jax_roialign.resize for this workload (besides the size)."""
        if self.method == "nearest":
            return {"method": "nearest", "coordinate_mode": "asymmetric", "nearest_mode": "floor"}
        return {"method": self.method}

    def arrays(self, seed: int = 0, dtype: jnp.dtype = jnp.float32) -> tuple[np.ndarray]:
        """(images (n, H, W, C),) as a NumPy array."""
        rng = np.random.default_rng(seed)
        return (rng.standard_normal((self.n, self.height, self.width, self.channels)).astype(dtype),)

    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.out_height, self.out_width, self.channels)


@dataclasses.dataclass(frozen=True)
class PasteWorkload:
    """Pasting num_masks (mask_size x mask_size) mask probabilities into a (height, width) image.

    Boxes [x1, y1, x2, y2] have sides uniform in [min_side, max_side] pixels, placed
    uniformly inside the image.
    """

    op: ClassVar[str] = "paste_masks"

    name: str
    num_masks: int
    mask_size: int
    height: int
    width: int
    min_side: float
    max_side: float

    def arrays(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(masks (K, M, M) in [0, 1), boxes (K, 4)) as NumPy float32 arrays."""
        rng = np.random.default_rng(seed)
        masks = rng.random((self.num_masks, self.mask_size, self.mask_size)).astype(np.float32)
        side = rng.uniform(self.min_side, self.max_side, (self.num_masks, 2))
        corner = rng.uniform(0.0, 1.0, (self.num_masks, 2)) * np.maximum([self.width, self.height] - side, 0.0)
        return masks, np.concatenate([corner, corner + side], axis=1).astype(np.float32)

    def output_shape(self) -> tuple[int, int, int]:
        return (self.num_masks, self.height, self.width)


WORKLOADS: dict[str, Workload | ResizeWorkload | PasteWorkload] = {
    w.name: w
    for w in (
        # Mask R-CNN box head on P3 of an 800 x 1088 input.
        Workload("fpn-p3-sr2", 2, 100, 136, 256, 512, 7, 1 / 8, 2, 16.0, 256.0),
        Workload("fpn-p3-adaptive", 2, 100, 136, 256, 512, 7, 1 / 8, 0, 16.0, 256.0),
        # The same with the max of the samples (mmcv, the paper; TF's emulation with a max pool),
        # and with onnxruntime's max of the weighted corners.
        Workload("fpn-p3-sr2-max", 2, 100, 136, 256, 512, 7, 1 / 8, 2, 16.0, 256.0, mode="max"),
        Workload("fpn-p3-sr2-corner-max", 2, 100, 136, 256, 512, 7, 1 / 8, 2, 16.0, 256.0, mode="corner_max"),
        # Mask head on P2.
        Workload("mask-p2", 2, 200, 272, 256, 256, 14, 1 / 4, 2, 16.0, 256.0),
        Workload("many-boxes", 2, 100, 136, 64, 8192, 7, 1 / 8, 2, 16.0, 256.0),
        # Oriented detection (DOTA-like): one 1024 x 1024 image at stride 8, rotated proposals.
        Workload("dota-rotated-sr2", 1, 128, 128, 256, 2000, 7, 1 / 8, 2, 16.0, 256.0, op="roi_align_rotated"),
        # R-FCN: 10 classes x 7 x 7 position-sensitive score maps of a 1000 x 1333 image at stride 16.
        Workload("rfcn-ps-adaptive", 1, 63, 84, 490, 300, 7, 1 / 16, 0, 32.0, 600.0, op="ps_roi_align"),
        Workload("rfcn-ps-sr2", 1, 63, 84, 490, 300, 7, 1 / 16, 2, 32.0, 600.0, op="ps_roi_align"),
        # FPN top-down path: P3 of an 800 x 1088 input (stride 8) upsampled 2x onto P2's grid.
        ResizeWorkload("fpn-upsample-nearest", 2, 100, 136, 256, 200, 272, "nearest"),
        ResizeWorkload("fpn-upsample-bilinear", 2, 100, 136, 256, 200, 272, "bilinear"),
        # Mask R-CNN inference: 100 detections' 28 x 28 masks pasted into an 800 x 1088 image.
        PasteWorkload("paste-masks", 100, 28, 800, 1088, 16.0, 256.0),
    )
}
