"""Cross-framework agreement: committed fixtures from torchvision, onnxruntime, TensorFlow and ONNX.

The fixtures are made by tests/fixtures/make_fixtures.py (schema in
tests/fixtures/README.md).  Float64 fixtures are compared at 1e-6 relative, float32
at 1e-5 (plus an absolute floor scaled by the values), the bounds the design card
sets for "equal to float rounding".
"""

from __future__ import annotations

import functools
import json
import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_roialign.compat import onnx, tensorflow, torchvision

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
TOLERANCE = {"float64": 1e-6, "float32": 1e-5}


def load_cases(source: str) -> list[tuple[str, dict, dict[str, np.ndarray]]]:
    """(name, params, arrays) of every case in tests/fixtures/<source>.npz."""
    path = FIXTURES / f"{source}.npz"
    if not path.exists():
        return []
    data = np.load(path)
    names = [key[: -len(".params")] for key in data.files if key.endswith(".params")]
    fields: dict[str, dict[str, np.ndarray]] = {name: {} for name in names}
    for key in data.files:
        # Case names and field names both hold dots: a key belongs to the longest case name prefixing it.
        owner = max((n for n in names if key.startswith(n + ".")), key=len)
        fields[owner][key[len(owner) + 1 :]] = data[key]
    out = []
    for name in sorted(names):
        arrays = fields[name]
        params = json.loads(str(arrays.pop("params")))
        out.append((name, params, arrays))
    return out


def assert_close(got: jax.Array, want: np.ndarray, dtype: str) -> None:
    tol = TOLERANCE[dtype]
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=tol, atol=tol * scale)


def check_torchvision_roi_op(op: Callable, params: dict, arrays: dict[str, np.ndarray]) -> None:
    """Output and input gradient of torchvision.ops.roi_align or roi_pool (through the compat op)."""
    dtype = params["dtype"]
    rois = jnp.asarray(arrays["rois"], dtype)
    kwargs = {k: params[k] for k in ("spatial_scale", "sampling_ratio", "aligned") if k in params}

    def f(x):
        return op(x, rois, tuple(params["output_size"]), **kwargs)

    out, vjp = jax.vjp(f, jnp.asarray(arrays["input"], dtype))
    assert_close(out, arrays["output"], dtype)
    (grad,) = vjp(jnp.asarray(arrays["cotangent"], dtype))
    assert_close(grad, arrays["grad_input"], dtype)


def check_torchvision_multi_scale_roi_align(params: dict, arrays: dict[str, np.ndarray]) -> None:
    dtype = params["dtype"]
    feats = {name: jnp.asarray(arrays[f"feat.{name}"], dtype) for name in params["featmap_names"]}
    n_images = len(params["image_shapes"])
    boxes = [jnp.asarray(arrays[f"boxes.{i}"], dtype) for i in range(n_images)]
    out = torchvision.multi_scale_roi_align(
        feats,
        boxes,
        [tuple(s) for s in params["image_shapes"]],
        featmap_names=params["featmap_names"],
        output_size=tuple(params["output_size"]),
        sampling_ratio=params["sampling_ratio"],
        canonical_scale=params.get("canonical_scale", 224),
        canonical_level=params.get("canonical_level", 4),
    )
    assert_close(out, arrays["output"], dtype)


def _onnx_call(params: dict, arrays: dict[str, np.ndarray]) -> jax.Array:
    dtype = params["dtype"]
    return onnx.roi_align(
        jnp.asarray(arrays["X"], dtype),
        jnp.asarray(arrays["rois"], dtype),
        jnp.asarray(arrays["batch_indices"]),
        mode=params["mode"],
        output_height=params["output_height"],
        output_width=params["output_width"],
        sampling_ratio=params["sampling_ratio"],
        spatial_scale=params["spatial_scale"],
        coordinate_transformation_mode=params["coordinate_transformation_mode"],
        opset=params["opset"],
    )


def check_onnxruntime_roi_align(params: dict, arrays: dict[str, np.ndarray]) -> None:
    assert_close(_onnx_call(params, arrays), arrays["output"], params["dtype"])


def check_onnx_backend_roi_align(params: dict, arrays: dict[str, np.ndarray]) -> None:
    """The ONNX package's own RoiAlign node tests, with the outputs the ONNX files give."""
    out = _onnx_call(params, arrays)
    # Those expected outputs are written with 4 decimals (off by up to 8.4e-5).
    np.testing.assert_allclose(np.asarray(out), arrays["output"], rtol=1e-4, atol=1e-4)


def check_tensorflow_crop_and_resize(params: dict, arrays: dict[str, np.ndarray]) -> None:
    image = jnp.asarray(arrays["image"], jnp.float32)
    boxes = jnp.asarray(arrays["boxes"], jnp.float32)

    def f(image, boxes):
        return tensorflow.crop_and_resize(
            image,
            boxes,
            jnp.asarray(arrays["box_indices"]),
            tuple(params["crop_size"]),
            params["method"],
            params["extrapolation_value"],
        )

    out, vjp = jax.vjp(f, image, boxes)
    assert_close(out, arrays["output"], "float32")
    grad_image, grad_boxes = vjp(jnp.asarray(arrays["cotangent"], jnp.float32))
    assert_close(grad_image, arrays["grad_image"], "float32")
    if "grad_boxes" in arrays:
        # Box gradients sum many products of differences: float32 cancellation, hence 1e-4.
        scale = max(1.0, float(np.abs(arrays["grad_boxes"]).max()))
        np.testing.assert_allclose(np.asarray(grad_boxes), arrays["grad_boxes"], rtol=1e-4, atol=1e-4 * scale)


CHECKS = {
    ("torchvision", "roi_align"): functools.partial(check_torchvision_roi_op, torchvision.roi_align),
    ("torchvision", "roi_pool"): functools.partial(check_torchvision_roi_op, torchvision.roi_pool),
    ("torchvision", "multi_scale_roi_align"): check_torchvision_multi_scale_roi_align,
    ("onnxruntime", "roi_align"): check_onnxruntime_roi_align,
    ("onnx_backend", "roi_align"): check_onnx_backend_roi_align,
    ("tensorflow", "crop_and_resize"): check_tensorflow_crop_and_resize,
}
SOURCES = ("torchvision", "onnxruntime", "onnx_backend", "tensorflow")
FIXTURE_CASES = [pytest.param(src, p, a, id=f"{src}:{n}") for src in SOURCES for n, p, a in load_cases(src)]


def test_every_source_has_fixtures():
    assert {p.values[0] for p in FIXTURE_CASES} == set(SOURCES)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("source,params,arrays", FIXTURE_CASES)
def test_fixture(source, params, arrays):
    CHECKS[source, params["op"]](params, arrays)
