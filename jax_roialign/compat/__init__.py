"""Drop-in signatures of other frameworks' ops, mapped onto the canonical op.

Each module takes its framework's layout, box format and flags and reproduces its
numbers: ``torchvision``, ``detectron2``, ``mmcv``, ``onnx`` (onnxruntime semantics)
and ``tensorflow`` (crop_and_resize).
"""

from jax_roialign.compat import detectron2, mmcv, onnx, tensorflow, torchvision

__all__ = ["detectron2", "mmcv", "onnx", "tensorflow", "torchvision"]
