"""Resize on the XLA path: every way of applying a table, dtypes, integers, gradients, transformations."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jax_roialign as jr
from jax_roialign.core import resize as tables
from jax_roialign.xla import resize as xla_resize
from tests.cases import tolerance

# (table_h, table_w) pairs covering every kind of plan: periodic of >= 64 outputs (slices under
# "auto"), short periodic, irregular (no period), a selection, extrapolation, an identity axis.
PAIRS = [
    (tables.torch_axis(40, 80, "bilinear"), tables.torch_axis(6, 12, "bicubic")),
    (
        tables.onnx_axis(13, 29, 29 / 13, "cubic", exclude_outside=True),
        tables.onnx_axis(9, 4, 4 / 9, "linear", antialias=True),
    ),
    (tables.torch_axis(40, 80, "nearest"), tables.onnx_axis(5, 8, 1.7, "nearest", "half_pixel", "round_prefer_ceil")),
    (tables.onnx_axis(7, 5, 5 / 7, "linear", "tf_crop_and_resize", roi=(-0.2, 1.3)), tables.identity_table(6)),
    (tables.tf_scale_and_translate_axis(9, 64, "lanczos3", False), tables.area_axis(10, 3)),
]


def _dense(x: np.ndarray, th: tables.AxisTable, tw: tables.AxisTable, fill: float) -> np.ndarray:
    y = np.einsum("ip,npqc,jq->nijc", th.matrix(), x, tw.matrix())
    return np.where((th.outside[:, None] | tw.outside[None, :])[None, :, :, None], fill, y)


def _inputs(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((2, th.length, tw.length, 3)) for th, tw in PAIRS]


@pytest.mark.parametrize("strategy", xla_resize.STRATEGIES)
def test_every_plan_equals_the_dense_tables(strategy, x64):
    """One compile per strategy; float64, so any misplaced tap or weight shows far above rounding."""
    xs = _inputs()
    run = jax.jit(
        lambda xs: [
            xla_resize.resample(x, th, tw, -7.0, strategy=strategy) for x, (th, tw) in zip(xs, PAIRS, strict=True)
        ]
    )
    for y, x, (th, tw) in zip(run([jnp.asarray(x) for x in xs]), xs, PAIRS, strict=True):
        np.testing.assert_allclose(np.asarray(y), _dense(x, th, tw, -7.0), rtol=1e-12, atol=1e-12)


def test_the_plans_taken():
    periodic, short = PAIRS[0]
    assert isinstance(xla_resize.axis_plan(periodic), xla_resize.PeriodicPlan)  # 80 outputs >= MIN_SLICED
    assert isinstance(xla_resize.axis_plan(short), xla_resize.GatherPlan)
    assert isinstance(xla_resize.axis_plan(short, "slices"), xla_resize.PeriodicPlan)
    assert isinstance(xla_resize.axis_plan(periodic, "gather"), xla_resize.GatherPlan)
    assert isinstance(xla_resize.axis_plan(PAIRS[1][0], "slices"), xla_resize.GatherPlan)  # 13 -> 29 has no period
    assert xla_resize.axis_plan(tables.identity_table(6)) is None
    # FPN 2x upsampling (the bench workloads) runs on slices.
    for method in ("nearest", "linear"):
        table = tables.onnx_axis(100, 200, 2.0, method, "asymmetric" if method == "nearest" else "half_pixel", "floor")
        assert isinstance(xla_resize.axis_plan(table), xla_resize.PeriodicPlan)


IMAGE = np.random.default_rng(1).standard_normal((2, 5, 7, 3))
DENSE_CUBIC = _dense(IMAGE, tables.onnx_axis(5, 8, 1.7, "cubic"), tables.onnx_axis(7, 11, 1.7, "cubic"), 0.0)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64"])
def test_float_dtypes_within_their_rounding(dtype, x64):
    x = jnp.asarray(IMAGE, dtype)
    y = jr.resize(x, scale=1.7, method="bicubic")
    assert y.dtype == x.dtype and y.shape == (2, 8, 11, 3)
    reference = _dense(
        np.asarray(x, np.float64), *(tables.onnx_axis(n, m, 1.7, "cubic") for n, m in ((5, 8), (7, 11))), 0
    )
    scale = np.abs(reference).max()
    np.testing.assert_allclose(np.asarray(y, np.float64), reference, rtol=0, atol=tolerance(dtype, 16) * scale)


def test_integer_images_round_half_to_even_and_saturate():
    """uint8 bilinear rounds the float32 result; int16 bicubic overshoots and saturates."""
    rng = np.random.default_rng(2)
    x8 = rng.integers(0, 256, (1, 4, 5, 2)).astype(np.uint8)
    th, tw = tables.onnx_axis(4, 7, 7 / 4, "linear"), tables.onnx_axis(5, 3, 3 / 5, "linear")
    np.testing.assert_array_equal(
        jr.resize(x8, (7, 3)), np.clip(np.rint(_dense(x8.astype(np.float64), th, tw, 0)), 0, 255)
    )
    x16 = np.where(rng.random((1, 6, 6, 1)) < 0.5, -32768, 32767).astype(np.int16)
    y16 = jr.resize(x16, 11, method="bicubic")
    th = tables.onnx_axis(6, 11, 11 / 6, "cubic")
    expected = np.clip(np.rint(_dense(x16.astype(np.float64), th, th, 0)), -32768, 32767)
    assert y16.dtype == jnp.int16
    np.testing.assert_allclose(np.asarray(y16, np.float64), expected, atol=1)  # float32 sums of +-32767 terms
    assert (np.asarray(y16) == 32767).any() and (np.asarray(y16) == -32768).any()


def test_nearest_copies_values_exactly_in_any_dtype():
    x = (np.arange(35, dtype=np.int64).reshape(1, 5, 7, 1) * 1_000_003).astype(np.int32)
    y = jr.resize(x, (3, 9), method="nearest", coordinate_mode="asymmetric", nearest_mode="floor")
    rows, cols = np.floor(np.arange(3) * 5 / 3).astype(int), np.floor(np.arange(9) * 7 / 9).astype(int)
    assert y.dtype == jnp.int32
    np.testing.assert_array_equal(y, x[:, rows][:, :, cols])


@pytest.mark.parametrize("strategy", ["slices", "gather"])
def test_a_non_finite_pixel_reaches_only_the_outputs_that_read_it(strategy):
    """As in the frameworks, an output is non-finite iff one of its taps is the inf pixel (weight 0 too: 0 * inf)."""
    x = np.zeros((1, 8, 8, 1), np.float32)
    x[0, 1, 1] = np.inf
    th = tables.torch_axis(8, 16, "bilinear")
    y = np.asarray(jax.jit(lambda x: xla_resize.resample(x, th, th, strategy=strategy))(x))[0, :, :, 0]
    weighted = th.matrix()[:, 1] != 0
    touched = np.any(th.indices() == 1, axis=1)
    assert np.all(~np.isfinite(y)[weighted[:, None] & weighted[None, :]])
    assert np.all(y[~(touched[:, None] & touched[None, :])] == 0)


def test_layouts_and_shape_rules():
    x = IMAGE.astype(np.float32)
    nchw = jr.resize(x.transpose(0, 3, 1, 2), (3, 4), method="bicubic", data_format="NCHW")
    np.testing.assert_allclose(
        nchw, np.asarray(jr.resize(x, (3, 4), method="bicubic")).transpose(0, 3, 1, 2), rtol=1e-6
    )
    assert jr.resize(x, scale=(0.6, 1.7)).shape == (2, 3, 11, 3)  # trunc(3.0), trunc(11.9)
    np.testing.assert_array_equal(jr.resize(x, (5, 7), method="bicubic"), x)  # onnxruntime: same shape, a copy


def test_extrapolation_and_roi():
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1)
    y = jr.resize(x, (3, 5), coordinate_mode="tf_crop_and_resize", roi=(0.0, -0.5, 1.0, 1.5), extrapolation_value=-1.0)
    # Columns sample -1.5, 0, 1.5, 3, 4.5 of a 4-wide row: the outer two fall outside.
    np.testing.assert_allclose(
        y[0, :, :, 0], np.array([[-1, 0, 1.5, 3, -1], [-1, 4, 5.5, 7, -1], [-1, 8, 9.5, 11, -1]])
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"method": "bilinear"}, {"method": "bicubic", "exclude_outside": True}, {"method": "bilinear", "antialias": True}],
)
def test_gradients_match_finite_differences(kwargs, x64):
    x = jnp.asarray(np.random.default_rng(3).standard_normal((1, 4, 5, 2)))
    size = (3, 7) if kwargs.get("antialias") else (6, 3)
    check_grads(lambda x: jr.resize(x, size, **kwargs), (x,), order=1, modes=("fwd", "rev"))


def test_transformations_compose():
    """jit, vmap, grad, jvp, checkpoint and scan, in one process, on the FPN-style periodic path."""
    x = jnp.asarray(np.random.default_rng(4).standard_normal((3, 1, 4, 40, 2)), jnp.float32)
    resize = functools.partial(jr.resize, size=(8, 80), method="bilinear")
    direct = jnp.stack([resize(xi) for xi in x])
    np.testing.assert_allclose(jax.jit(jax.vmap(resize))(x), direct, rtol=1e-6)
    np.testing.assert_allclose(jax.lax.scan(lambda c, xi: (c, jax.checkpoint(resize)(xi)), 0, x)[1], direct, rtol=1e-6)
    cotangent = jnp.ones_like(direct[0])
    grad = jax.grad(lambda xi: jnp.vdot(jax.checkpoint(resize)(xi), cotangent))(x[0])
    _, vjp = jax.vjp(resize, x[0])
    np.testing.assert_allclose(grad, vjp(cotangent)[0], rtol=1e-6)
    _, tangent = jax.jvp(resize, (x[0],), (x[1],))
    np.testing.assert_allclose(tangent, direct[1], rtol=1e-5, atol=1e-6)  # linear: the jvp is the map itself


# Tables whose gradient is the transposed tables' resample: up and down sampling, odd sizes,
# clamped borders folding onto the border rows, outputs outside (fill), every kind of plan.
GRADIENT_PAIRS = [
    # FPN 2x: slices; the transposes clamp each read (linear) or pad the cotangent (cubic, 8 taps).
    (tables.onnx_axis(100, 200, 2.0, "linear"), tables.onnx_axis(68, 136, 2.0, "cubic")),
    (tables.onnx_axis(5, 3, 3 / 5, "linear"), tables.onnx_axis(3, 7, 7 / 3, "linear")),
    (tables.onnx_axis(5, 8, 1.7, "cubic"), tables.onnx_axis(7, 11, 1.7, "cubic", "asymmetric")),
    (tables.torch_axis(6, 13, "bilinear", align_corners=True), tables.torch_axis(9, 4, "bicubic", antialias=True)),
    (tables.onnx_axis(9, 4, 4 / 9, "linear", antialias=True), tables.area_axis(10, 3)),
    (tables.onnx_axis(7, 5, 5 / 7, "linear", "tf_crop_and_resize", roi=(-0.2, 1.3)), tables.identity_table(6)),
    (
        tables.onnx_axis(6, 9, 1.5, "cubic", "tf_crop_and_resize", roi=(0.3, 1.4)),
        tables.torch_axis(40, 80, "nearest"),
    ),
    (tables.tf_scale_and_translate_axis(9, 64, "lanczos3", False), tables.torch_axis(6, 12, "bicubic")),
    (tables.torch_axis(7, 5, "bicubic", align_corners=True), tables.torch_axis(5, 3, "nearest")),  # zero rows
]


@pytest.mark.parametrize("strategy", ["auto", "gather"])
def test_gradient_is_the_transposed_tables_resample(strategy, x64):
    """vjp == T_h^T ct T_w (outside outputs drop out) in float64, and JAX's own transpose in float32."""
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((2, th.length, tw.length, 3)) for th, tw in GRADIENT_PAIRS]
    cts = [rng.standard_normal((2, th.size, tw.size, 3)) for th, tw in GRADIENT_PAIRS]

    def grads(resample, dtype):
        def one(x, ct, th, tw):
            return jax.vjp(lambda x: resample(x, th, tw), x)[1](ct)[0]

        run = jax.jit(lambda xs, cts: [one(x, c, *p) for x, c, p in zip(xs, cts, GRADIENT_PAIRS, strict=True)])
        return run([jnp.asarray(x, dtype) for x in xs], [jnp.asarray(c, dtype) for c in cts])

    def ours(x, th, tw):
        return xla_resize.resample(x, th, tw, -7.0, strategy=strategy)

    def autodiff(x, th, tw):  # the plain formulation, transposed by JAX
        first_h = xla_resize._order(th, tw, None)
        y = xla_resize._separable(x, th, tw, first_h, strategy)
        outside = (th.outside[:, None] | tw.outside[None, :])[None, :, :, None]
        return jnp.where(outside, -7.0, y)

    for g, ct, (th, tw) in zip(grads(ours, jnp.float64), cts, GRADIENT_PAIRS, strict=True):
        keep = ~(th.outside[:, None] | tw.outside[None, :])[None, :, :, None]
        expected = np.einsum("ip,nijc,jq->npqc", th.matrix(), np.where(keep, ct, 0.0), tw.matrix())
        np.testing.assert_allclose(np.asarray(g), expected, rtol=1e-12, atol=1e-12)
    for g, r in zip(grads(ours, jnp.float32), grads(autodiff, jnp.float32), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=0, atol=1e-5 * float(np.abs(r).max()))


def test_the_transposed_fpn_tables_run_on_slices():
    for method in ("linear", "cubic"):
        table = tables.onnx_axis(100, 200, 2.0, method)
        plan = xla_resize.axis_plan(tables.transposed(table))
        assert isinstance(plan, xla_resize.PeriodicPlan) and (plan.period, plan.step) == (1, 2)


def test_the_linear_map_under_every_transformation():
    """The primitive against the plain formulation (JAX's own rules) under each transformation."""
    th, tw = tables.onnx_axis(5, 8, 1.7, "cubic", "tf_crop_and_resize", roi=(-0.1, 1.2)), tables.area_axis(7, 3)
    x = jnp.asarray(np.random.default_rng(6).standard_normal((2, 5, 7, 3)), jnp.float32)
    xb = jnp.stack([x, -2 * x])
    g = jnp.asarray(np.random.default_rng(7).standard_normal((2, 8, 3, 3)), jnp.float32)

    def plain(x):
        y = xla_resize._separable(x, th, tw, xla_resize._order(th, tw, None), "auto")
        return jnp.where((th.outside[:, None] | tw.outside[None, :])[None, :, :, None], 0.5, y)

    def ours(x):
        return xla_resize.resample(x, th, tw, 0.5)

    def checks(f):
        loss = lambda x: jnp.vdot(f(x) ** 2, g)  # noqa: E731
        return {
            "jvp": lambda: jax.jvp(f, (x,), (2 * x,)),
            "vmap": lambda: jax.vmap(f)(xb),
            "vmap in axis 3": lambda: jax.vmap(f, in_axes=3, out_axes=3)(jnp.moveaxis(xb, 0, 3)),
            "linear_transpose": lambda: jax.linear_transpose(lambda x: f(x) - f(jnp.zeros_like(x)), x)(g),
            "grad of grad": lambda: jax.grad(lambda x: jnp.sum(jax.grad(loss)(x) ** 2))(x),
            "hessian": lambda: jax.hessian(lambda x: jnp.sum(f(x) ** 2))(x[:1, :, :, :1]),
            "jacfwd": lambda: jax.jacfwd(f)(x[:1, :, :, :1]),
            "jacrev": lambda: jax.jacrev(f)(x[:1, :, :, :1]),
            "vmap(grad)": lambda: jax.vmap(jax.grad(loss))(xb),
            "checkpoint in scan": lambda: jax.grad(
                lambda xb: jnp.sum(jax.lax.scan(lambda c, xi: (c + loss(xi), None), 0.0, xb, unroll=False)[0])
            )(xb),
            "jit(grad(checkpoint))": lambda: jax.jit(jax.grad(jax.checkpoint(loss)))(x),
        }

    np.testing.assert_allclose(ours(x), plain(x), rtol=1e-6, atol=1e-6)  # eager: the primitive's own impl
    reference = checks(plain)
    for name, thunk in checks(ours).items():
        got, expected = jax.jit(thunk)(), jax.jit(reference[name])()
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"size": 4, "method": "lanczos"}, ValueError, "method"),
        ({"size": 4, "coordinate_mode": "corners"}, ValueError, "coordinate_mode"),
        ({"size": 4, "nearest_mode": "nearest"}, ValueError, "nearest_mode"),
        ({"size": 4, "scale": 2.0}, ValueError, "exactly one of size and scale"),
        ({}, ValueError, "exactly one of size and scale"),
        ({"size": 0}, ValueError, "size"),
        ({"scale": 0.01}, ValueError, "empty output"),
        ({"scale": -2.0}, ValueError, "scale"),
        ({"size": 4, "method": "area", "coordinate_mode": "asymmetric"}, ValueError, "area"),
        ({"size": 4, "roi": (0, 1)}, ValueError, "roi"),
        ({"size": 4, "antialias": "yes"}, TypeError, "antialias"),
        ({"size": 4, "cubic_coeff_a": float("nan")}, ValueError, "cubic_coeff_a"),
        ({"size": 4, "data_format": "HWC"}, ValueError, "data_format"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, error, match):
    with pytest.raises(error, match=match):
        jr.resize(np.zeros((1, 3, 3, 1), np.float32), **kwargs)


def test_bad_images_name_themselves():
    with pytest.raises(ValueError, match="shape"):
        jr.resize(np.zeros((3, 3, 1), np.float32), 4)
    with pytest.raises(TypeError, match="dtype bool"):
        jr.resize(np.zeros((1, 3, 3, 1), bool), 4)
