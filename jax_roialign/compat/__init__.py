"""Drop-in signatures of other frameworks' ops, mapped onto the canonical op.

Each module takes its framework's layout, box format and flags and reproduces its
numbers: ``torchvision``, ``detectron2``, ``mmcv``, ``onnx`` (onnxruntime semantics),
``tensorflow`` (crop_and_resize, resize), ``torch`` (interpolate), ``opencv`` (resize)
and ``chainer`` (resize_images).
"""

from jax_roialign.compat import chainer, detectron2, mmcv, onnx, opencv, tensorflow, torch, torchvision

__all__ = ["chainer", "detectron2", "mmcv", "onnx", "opencv", "tensorflow", "torch", "torchvision"]
