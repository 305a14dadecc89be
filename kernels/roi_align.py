"""RoIAlign on the Pallas kernels: a linear map of the features with the kernels as its transpose.

Contract: that of ``jax_roialign.xla.roi_align``.  The per-box geometry is built in
plain JAX with the shared sampling code (``geometry``); the kernels do the reads and
reductions (``avg_pool``, ``max_pool``).

For fixed boxes RoIAlign is linear in the features: avg is ``Wy X Wx^T`` per box, and
max / corner_max read the features at each bin's winning sample once the winners are
known (found by the forward kernel, piecewise constant in the features).  That linear
map and its transpose are two JAX primitives, ``roi_align_pallas_features`` (the avg
forward kernel, or the read at the winners) and ``roi_align_pallas_features_transpose``
(the deterministic owner-computes backward kernels), each the other's transpose and
each linear in its one input, so the features can be differentiated in every mode and
to any order (``grad``, ``jvp``, ``linear_transpose``, ``hessian``) under ``jit``,
``vmap``, ``checkpoint`` and ``scan``.  Which Pallas lowering runs is decided when the
program is lowered, by the platform it is compiled for (Mosaic for TPU, Triton for
GPU, the interpreter on a CPU), so an ahead-of-time compile for a TPU or GPU gets the
hardware kernels.

This module is differentiable in the features only; the boxes' derivative of
``jax_roialign.roi_align(impl="pallas")`` is the XLA path's, composed in
``jax_roialign.ops``.  Differentiating :func:`roi_align` here w.r.t. the boxes raises.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from jax_roialign.conventions import RoIAlignSpec
from jax_roialign.core import guards
from jax_roialign.core.avals import result_aval
from jax_roialign.core.bins import compute_dtype

from . import avg_pool, geometry, max_pool
from .config import BlockSizes
from .target import Target, check_block_sizes, check_supported, default_block_sizes, platform_target


@dataclasses.dataclass(frozen=True)
class _Plan:
    """Static configuration of one call (hashable: a primitive parameter).

    ``target=None`` picks the kernel variant by the platform the program is lowered for,
    and ``block_sizes=None`` that variant's default block sizes.
    """

    spec: RoIAlignSpec
    block_sizes: BlockSizes | None
    target: Target | None

    def target_for(self, platform: str) -> Target:
        return self.target if self.target is not None else platform_target(platform)

    def block_sizes_for(self, target: Target) -> BlockSizes:
        return self.block_sizes if self.block_sizes is not None else default_block_sizes(target)


def roi_align(
    features: jax.Array,
    boxes: jax.Array,
    batch_indices: jax.Array,
    spec: RoIAlignSpec,
    *,
    block_sizes: BlockSizes | None = None,
    target: Target | None = None,
) -> jax.Array:
    """RoIAlign of canonical inputs on the Pallas kernels; returns (K, out_h, out_w, C) in features' dtype.

    Same contract as ``jax_roialign.xla.roi_align``: features (N, H, W, C), boxes
    (K, 4) [x1, y1, x2, y2] in input-image coordinates, batch_indices (K,) ints.
    Accumulation is float32 (float64 for float64 features).  A box whose batch index
    lies outside [0, N) yields zeros and reads nothing; a box with a NaN or infinite
    coordinate yields NaN and passes no gradient; a bin with no samples yields 0.

    Differentiable in the features in every mode and to any order; the features'
    gradient comes from a deterministic owner-computes kernel (no atomics: bitwise
    reproducible).  Differentiating w.r.t. the boxes raises NotImplementedError here
    (``jax_roialign.roi_align(impl="pallas")`` adds the XLA path's box derivative).

    Args:
      features, boxes, batch_indices, spec: as for ``jax_roialign.xla.roi_align``.
      block_sizes: tiling (default None: the kernel variant's default,
        ``target.DEFAULT_BLOCK_SIZES``); it does not change results beyond float
        rounding.
      target: kernel variant and interpret mode; default None: Mosaic when compiled
        for a TPU, Triton for a GPU, the interpreter on a CPU.

    Raises:
      ValueError: block_sizes an explicit target cannot tile with (``check_block_sizes``).
    """
    if block_sizes is not None and not isinstance(block_sizes, BlockSizes):
        raise TypeError(f"block_sizes must be a BlockSizes, got {block_sizes!r}")
    if target is not None and not isinstance(target, Target):
        raise TypeError(f"target must be a Target, got {target!r}")
    if target is not None and block_sizes is not None:
        check_block_sizes(target, block_sizes, features.shape[-1])
    return roi_align_jvp(features, boxes, batch_indices, spec, None, _Plan(spec, block_sizes, target))[0]


def roi_align_jvp(
    features: jax.Array,
    boxes: jax.Array,
    batch_indices: jax.Array,
    spec: RoIAlignSpec,
    features_dot: jax.Array | None,
    plan: _Plan | None = None,
) -> tuple[jax.Array, jax.Array | None]:
    """(RoIAlign of the features, the same linear map applied to features_dot), both on the kernels.

    The second result is the derivative along ``features_dot`` with the boxes held
    fixed (None when features_dot is None): the winners of max modes come from
    ``features``.  Results in features' dtype.
    """
    plan = plan if plan is not None else _Plan(spec, None, None)
    cdt = compute_dtype(features.dtype)
    boxes, batch_indices, finite = guards.isolate_nonfinite_boxes(boxes.astype(cdt), batch_indices.astype(jnp.int32))
    x = features.astype(cdt)
    dots = [] if features_dot is None else [features_dot.astype(cdt)]
    if boxes.shape[0] == 0:
        outs = [jnp.zeros((0, *spec.output_size, x.shape[-1]), cdt) for _ in range(1 + len(dots))]
    else:
        residuals = _residuals(x, boxes, batch_indices, plan)
        outs = [features_map(v, residuals, plan) for v in (x, *dots)]
    outs = [guards.mark_nonfinite(o, finite).astype(features.dtype) for o in outs]
    return outs[0], (outs[1] if dots else None)


def _residuals(x: jax.Array, boxes: jax.Array, batch_indices: jax.Array, plan: _Plan) -> tuple:
    """What the linear map needs besides the features: the geometry (from the boxes),
    and for max modes the winning samples (from the features, without derivative)."""
    spec = plan.spec
    n = x.shape[0]
    ranges = geometry.image_ranges(batch_indices, n)
    if spec.mode == "avg":
        return ranges, geometry.avg_geometry(boxes, batch_indices, x.shape, spec), batch_indices
    geo = geometry.max_geometry(boxes, batch_indices, n_images=n, spec=spec)
    _, arg, code = _max_search_p.bind(
        jax.lax.stop_gradient(x), *jax.tree_util.tree_leaves(jax.lax.stop_gradient(geo)), plan=plan
    )
    return ranges, geo, arg, code


# --------------------------------------------------------------------------------------
# The primitives.  Operands: (value, *residual leaves); the residual pytree structure
# follows from the plan's mode (avg: (ImageRanges, AvgGeometry, batch indices);
# max: (ImageRanges, MaxGeometry, arg, code)).
# --------------------------------------------------------------------------------------


def _unflatten_residuals(leaves: list, plan: _Plan) -> tuple:
    n_ranges = len(geometry.ImageRanges._fields)
    ranges = geometry.ImageRanges(*leaves[:n_ranges])
    if plan.spec.mode == "avg":
        n_geo = len(geometry.AvgGeometry._fields)
        return ranges, geometry.AvgGeometry(*leaves[n_ranges : n_ranges + n_geo]), leaves[n_ranges + n_geo]
    n_geo = len(geometry.MaxGeometry._fields)
    geo = geometry.MaxGeometry(*leaves[n_ranges : n_ranges + n_geo])
    arg, code = leaves[n_ranges + n_geo :]
    return ranges, geo, arg, code


def _flatten_residuals(residuals: tuple) -> list:
    ranges, geo, *winners = residuals
    return [*ranges, *geo, *winners]


def features_map(x: jax.Array, residuals: tuple, plan: _Plan) -> jax.Array:
    """The linear map of the features x (compute dtype): (K, out_h, out_w, C)."""
    return _features_p.bind(x, *_flatten_residuals(residuals), plan=plan, features_shape=x.shape)


def _map_impl(x, *leaves, plan: _Plan, features_shape, target: Target):
    ranges, geo, *winners = _unflatten_residuals(list(leaves), plan)
    if plan.spec.mode == "avg":
        (image,) = winners
        return avg_pool.forward(x, image, geo, plan.spec.output_size, plan.block_sizes_for(target), target)
    arg, code = winners
    return max_pool.read_winners(x, arg, code if plan.spec.mode == "corner_max" else None, geo, plan.spec.output_size)


def _transpose_impl(g, *leaves, plan: _Plan, features_shape, target: Target):
    ranges, geo, *winners = _unflatten_residuals(list(leaves), plan)
    kwargs = {"features_shape": features_shape, "block_sizes": plan.block_sizes_for(target), "target": target}
    if plan.spec.mode == "avg":
        return avg_pool.backward(g, ranges, geo, **kwargs)
    arg, code = winners
    return max_pool.backward(g, arg, code if plan.spec.mode == "corner_max" else None, ranges, geo, **kwargs)


def _search_impl(x, *leaves, plan: _Plan, target: Target):
    geo = geometry.MaxGeometry(*leaves)
    corner = plan.spec.mode == "corner_max"
    out, arg, code = max_pool.forward(x, geo, plan.spec.output_size, corner, plan.block_sizes_for(target), target)
    return out, arg, (code if code is not None else jnp.zeros_like(arg))


def _platform_lowerings(prim: Primitive, impl) -> None:
    """Lower prim through impl with the kernel variant of each platform (or the plan's explicit target)."""
    for platform in ("tpu", "cuda", "rocm", "cpu"):

        def lower(ctx, *args, platform=platform, **params):
            plan = params["plan"]
            target = plan.target_for(platform)
            check_supported(target, ctx.avals_in[0].dtype)
            check_block_sizes(target, plan.block_sizes_for(target), ctx.avals_in[0].shape[-1])
            fun = functools.partial(impl, **params, target=target)
            return mlir.lower_fun(fun, multiple_results=prim.multiple_results)(ctx, *args)

        mlir.register_lowering(prim, lower, platform=platform)


def _eager(impl, *args, **params):
    target = params["plan"].target_for(jax.default_backend())
    return impl(*args, **params, target=target)


_features_p = Primitive("roi_align_pallas_features")
_features_transpose_p = Primitive("roi_align_pallas_features_transpose")
_max_search_p = Primitive("roi_align_pallas_max_search")
_max_search_p.multiple_results = True

for _prim, _impl in ((_features_p, _map_impl), (_features_transpose_p, _transpose_impl), (_max_search_p, _search_impl)):
    _prim.def_impl(
        functools.partial(jax.jit(_eager, static_argnums=0, static_argnames=("plan", "features_shape")), _impl)
    )
    _platform_lowerings(_prim, _impl)


def _features_abstract(x, *leaves, plan: _Plan, features_shape):
    k = leaves[len(geometry.ImageRanges._fields)].shape[0]
    return result_aval((k, *plan.spec.output_size, x.shape[-1]), x.dtype, (x, *leaves))


def _transpose_abstract(g, *leaves, plan: _Plan, features_shape):
    return result_aval(features_shape, g.dtype, (g, *leaves))


def _search_abstract(x, *leaves, plan: _Plan):
    shape = (leaves[0].shape[0], *plan.spec.output_size, x.shape[-1])
    operands = (x, *leaves)
    return [result_aval(shape, dtype, operands) for dtype in (x.dtype, jnp.int32, jnp.int32)]


_features_p.def_abstract_eval(_features_abstract)
_features_transpose_p.def_abstract_eval(_transpose_abstract)
_max_search_p.def_abstract_eval(_search_abstract)

_BOXES_DERIVATIVE = (
    "jax_roialign.kernels.roi_align is differentiable in the features only; jax_roialign.roi_align(impl='pallas') "
    "adds the boxes' derivative (first order)"
)


def _linear_jvp(prim: Primitive):
    """JVP of a primitive linear in its first operand, with residual operands held fixed."""

    def jvp(primals, tangents, **params):
        value_dot, *residual_dots = tangents
        if any(type(t) is not ad.Zero for t in residual_dots):
            raise NotImplementedError(_BOXES_DERIVATIVE)
        out = prim.bind(*primals, **params)
        if type(value_dot) is ad.Zero:
            return out, ad.Zero.from_primal_value(out)
        return out, prim.bind(value_dot, *primals[1:], **params)

    return jvp


def _transpose_to(prim: Primitive):
    """Transpose rule of a primitive linear in its first operand: the other primitive of the pair."""

    def transpose(ct, value, *residuals, **params):
        if any(ad.is_undefined_primal(r) for r in residuals):
            raise NotImplementedError(_BOXES_DERIVATIVE)
        if type(ct) is ad.Zero:
            return [None] * (1 + len(residuals))
        return [prim.bind(ct, *residuals, **params), *[None] * len(residuals)]

    return transpose


ad.primitive_jvps[_features_p] = _linear_jvp(_features_p)
ad.primitive_jvps[_features_transpose_p] = _linear_jvp(_features_transpose_p)
ad.primitive_transposes[_features_p] = _transpose_to(_features_transpose_p)
ad.primitive_transposes[_features_transpose_p] = _transpose_to(_features_p)


def sequential_batching(prim: Primitive):
    """Batching rule: the primitive once per batch element, in a loop (lax.map).

    The kernels own whole images and boxes, so a batch is run element by element; the
    results are exact and deterministic, at the speed of a loop.
    """

    def rule(args, dims, **params):
        size = next(a.shape[d] for a, d in zip(args, dims, strict=True) if d is not None)
        batched = [(a, d) for a, d in zip(args, dims, strict=True)]
        mapped = [batching.bdim_at_front(a, d, size) for a, d in batched if d is not None]

        def one(mapped_args):
            it = iter(mapped_args)
            return prim.bind(*[next(it) if d is not None else a for a, d in batched], **params)

        outs = jax.lax.map(one, mapped)
        return outs, ([0] * len(outs) if prim.multiple_results else 0)

    return rule


for _prim in (_features_p, _features_transpose_p, _max_search_p):
    batching.primitive_batchers[_prim] = sequential_batching(_prim)
