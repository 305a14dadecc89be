"""Sums over a run-time number of terms, differentiable in every mode.

Adaptive sampling gives every box a data-dependent number of samples, so the natural
loop has a traced trip count, which JAX cannot differentiate in reverse mode
(``lax.while_loop``).  Every such op here is a sum of independent terms, each linear in
the features::

    loop_sum(term, n, linear, params, consts) == sum(term.fn(t, linear, params, consts) for t in range(n))

and a sum of independent terms needs no stored history to differentiate: the cotangent
of ``linear`` is the sum of each term's transpose, and the cotangent of ``params`` the
sum of each term's vector-Jacobian product, each computed in a forward loop.  This
module makes that three JAX primitives with complete rules:

=============  ==========================================  ======================
primitive      computes                                    linear in
=============  ==========================================  ======================
``sum``        sum_t fn(t, linear, params)                 linear
``transpose``  sum_t (d fn / d linear)^T ct                ct
``params_vjp`` sum_t (d fn / d params)^T ct                ct, linear
=============  ==========================================  ======================

A derivative in ``params`` is itself a ``sum`` of the *tangent term*
``fn'(t, linear, (params, params_dot))`` (linear in ``linear`` and in ``params_dot``),
so every derivative of every order stays a loop with memory independent of ``n``, and
ops built on it work under ``jit``, ``vmap`` (a batched trip count becomes the largest
one, the surplus terms masked), ``grad`` / ``vjp`` / ``jvp`` / ``jacfwd`` / ``jacrev`` /
``hessian`` / ``linear_transpose`` in the features and the params and mixed,
``jax.checkpoint``, ``lax.scan``, ``shard_map`` and ``jax.export``.  Transposing one
equation in params and features at once (which no derivative of the ops needs) raises
NotImplementedError.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from jax_roialign.core.avals import result_aval, zeros_like_varying

PyTree = Any


@dataclasses.dataclass(frozen=True)
class Term:
    """How to compute term ``t`` of a :func:`loop_sum` (hashable: a static parameter).

    Attributes:
      fn: ``fn(t, linear, params, consts) -> array`` for an int32 scalar ``t``; linear
        in ``linear``, differentiable in ``params`` (float leaves), ``consts`` held
        fixed (indices, masks).  Use a module-level function or a ``functools.partial``
        of one whose arguments are hashable, so that calls share compilations.
      transpose: optional ``transpose(t, ct, params, consts, linear_shapes) -> pytree``
        like ``linear``: the transpose of term ``t`` applied to the cotangent ``ct``,
        where a hand-written form is faster than JAX's transpose of ``fn`` (it must be
        the same linear map; tests compare them).  ``linear_shapes`` is a pytree of
        ``jax.ShapeDtypeStruct`` like ``linear``.
      params_transpose: optional ``params_transpose(t, ct, linear, params, consts) ->
        pytree`` like ``params``: term ``t``'s vector-Jacobian product in the params,
        where a hand-written form is faster than ``jax.vjp`` of ``fn`` (the same
        quantity; tests compare them).
      single: the sum always has exactly one term (``n`` is 1): term 0 is evaluated
        directly, with no loop and no accumulator, which XLA cannot elide around a
        traced trip count.
    """

    fn: Callable[..., jax.Array]
    transpose: Callable[..., PyTree] | None = None
    params_transpose: Callable[..., PyTree] | None = None
    single: bool = False


def loop_sum(term: Term, n: jax.Array, linear: PyTree, params: PyTree = (), consts: PyTree = ()) -> jax.Array:
    """``sum(term.fn(t, linear, params, consts) for t in range(n))``, 0 for n <= 0.

    Args:
      term: the :class:`Term`.
      n: the number of terms, an integer scalar (traced or not).
      linear: pytree of float arrays in which every term is linear (the features).
      params: pytree of float arrays in which terms are differentiable (box coordinates).
      consts: pytree of arrays held fixed (indices, masks, trip counts).

    Returns:
      One array, the shape and dtype of ``term.fn``'s result, accumulated in that dtype
      in the order t = 0, 1, ..., n - 1 (deterministic).
    """
    flat, spec = _flatten(linear, params, consts)
    (out,) = _sum_p.bind(jnp.asarray(n, jnp.int32), *flat, term=term, spec=spec)
    return out


# --------------------------------------------------------------------------------------
# Operand layout: every primitive takes (n, *groups) with the groups given by a _Spec.
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Spec:
    """Pytree structures and shapes of (linear, params, consts), static."""

    linear: jax.tree_util.PyTreeDef
    params: jax.tree_util.PyTreeDef
    consts: jax.tree_util.PyTreeDef
    linear_shapes: tuple[jax.ShapeDtypeStruct, ...]

    @property
    def sizes(self) -> tuple[int, int, int]:
        return self.linear.num_leaves, self.params.num_leaves, self.consts.num_leaves

    def split(self, flat: list) -> tuple[list, list, list]:
        a, b, _ = self.sizes
        return flat[:a], flat[a : a + b], flat[a + b :]

    def trees(self, lin: list, par: list, con: list) -> tuple[PyTree, PyTree, PyTree]:
        return self.linear.unflatten(lin), self.params.unflatten(par), self.consts.unflatten(con)


def _flatten(linear: PyTree, params: PyTree, consts: PyTree) -> tuple[list, _Spec]:
    lin, lin_tree = jax.tree_util.tree_flatten(linear)
    par, par_tree = jax.tree_util.tree_flatten(params)
    con, con_tree = jax.tree_util.tree_flatten(consts)
    shapes = tuple(jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)) for a in lin)
    return [*lin, *par, *con], _Spec(lin_tree, par_tree, con_tree, shapes)


def _term_value(term: Term, spec: _Spec, t, lin, par, con) -> jax.Array:
    return term.fn(t, *spec.trees(lin, par, con))


def _term_transpose(term: Term, spec: _Spec, t, ct, par, con) -> list:
    """Term t's transpose applied to ct, flat like linear."""
    linear, params, consts = spec.trees([jnp.zeros(s.shape, s.dtype) for s in spec.linear_shapes], par, con)
    if term.transpose is not None:
        shapes = spec.linear.unflatten(spec.linear_shapes)
        return jax.tree_util.tree_leaves(term.transpose(t, ct, params, consts, shapes))
    _, pullback = jax.vjp(lambda lin: term.fn(t, lin, params, consts), linear)
    return jax.tree_util.tree_leaves(pullback(ct)[0])


def _loop(n, body: Callable[[jax.Array], list], init: list, operands: list, single: bool = False) -> list:
    """init + sum of body(t) for t < n, in order; the carry varies (shard_map) like the operands.

    ``single``: n is 1 and init is zeros, so the sum is body(0).
    """
    if single:
        return list(body(jnp.int32(0)))
    init = [zeros_like_varying(a.shape, a.dtype, *operands) + a for a in init]
    return jax.lax.fori_loop(0, n, lambda t, acc: [a + b for a, b in zip(acc, body(t), strict=True)], init)


# --------------------------------------------------------------------------------------
# The four primitives: implementations (loops) and shapes.
# --------------------------------------------------------------------------------------


def _sum_impl(n, *flat, term, spec):
    lin, par, con = spec.split(list(flat))
    out = _out_shape(term, spec, lin, par, con)
    body = lambda t: [_term_value(term, spec, t, lin, par, con)]  # noqa: E731
    return _loop(n, body, [jnp.zeros(out.shape, out.dtype)], flat, term.single)


def _transpose_impl(n, ct, *flat, term, spec):
    par, con = flat[: spec.sizes[1]], flat[spec.sizes[1] :]
    init = [jnp.zeros(s.shape, s.dtype) for s in spec.linear_shapes]
    body = lambda t: _term_transpose(term, spec, t, ct, list(par), list(con))  # noqa: E731
    return _loop(n, body, init, [ct, *flat], term.single)


def _term_params_transpose(term: Term, spec: _Spec, t, ct, lin, par, con) -> list:
    """Term t's vector-Jacobian product in the params, flat like params."""
    if term.params_transpose is not None:
        return jax.tree_util.tree_leaves(term.params_transpose(t, ct, *spec.trees(lin, par, con)))
    _, pullback = jax.vjp(lambda p: _term_value(term, spec, t, lin, p, con), par)
    return list(pullback(ct)[0])


def _params_vjp_impl(n, ct, *flat, term, spec):
    lin, par, con = spec.split(list(flat))

    def body(t):
        return _term_params_transpose(term, spec, t, ct, lin, par, con)

    return _loop(n, body, [jnp.zeros(jnp.shape(p), jnp.result_type(p)) for p in par], [ct, *flat], term.single)


def _out_shape(term: Term, spec: _Spec, lin, par, con) -> jax.ShapeDtypeStruct:
    return jax.eval_shape(lambda *a: _term_value(term, spec, jnp.int32(0), *spec.split(list(a))), *lin, *par, *con)


def _sum_abstract(n, *flat, term, spec):
    lin, par, con = spec.split(list(flat))
    out = _out_shape(term, spec, lin, par, con)
    return [result_aval(out.shape, out.dtype, flat)]


def _transpose_abstract(n, ct, *flat, term, spec):
    return [result_aval(s.shape, s.dtype, (ct, *flat)) for s in spec.linear_shapes]


def _params_vjp_abstract(n, ct, *flat, term, spec):
    _, par, _ = spec.split(list(flat))
    return [result_aval(p.shape, p.dtype, (ct, *flat)) for p in par]


def _primitive(name: str, impl: Callable, abstract: Callable) -> Primitive:
    prim = Primitive(f"roialign_loop_sum_{name}")
    prim.multiple_results = True
    prim.def_impl(functools.partial(_jitted_impl, impl))
    prim.def_abstract_eval(abstract)
    mlir.register_lowering(prim, mlir.lower_fun(impl, multiple_results=True))
    return prim


@functools.partial(jax.jit, static_argnums=0, static_argnames=("term", "spec"))
def _jitted_impl(impl, *args, term, spec):
    return impl(*args, term=term, spec=spec)


_sum_p = _primitive("sum", _sum_impl, _sum_abstract)
_transpose_p = _primitive("transpose", _transpose_impl, _transpose_abstract)
_params_vjp_p = _primitive("params_vjp", _params_vjp_impl, _params_vjp_abstract)


# --------------------------------------------------------------------------------------
# Differentiation rules.  A derivative w.r.t. params is itself a loop_sum: of the
# tangent term below, linear in `linear` like the original and in the tangent params.
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _TangentFn:
    """fn's directional derivative in params: ``fn'(t, linear, (params, params_dot), consts)``.

    Linear in ``linear`` (fn is) and in ``params_dot``, so that a derivative in params is
    again a :func:`loop_sum`, whose own rules give every mixed derivative.
    """

    base: Term

    def __call__(self, t, linear, params, consts):
        primal, tangent = params
        return jax.jvp(lambda p: self.base.fn(t, linear, p, consts), (primal,), (tangent,))[1]


def _tangent_problem(term: Term, spec: _Spec) -> tuple[Term, _Spec]:
    """The term and spec whose params are (params, params_dot)."""
    params = jax.tree_util.tree_structure((spec.params.unflatten([0] * spec.sizes[1]),) * 2)
    return Term(_TangentFn(term), single=term.single), dataclasses.replace(spec, params=params)


def _is_zero(t) -> bool:
    return type(t) is ad.Zero


def _instantiate(tangents, primals) -> list:
    return [ad.instantiate_zeros(t) if _is_zero(t) else t for t, p in zip(tangents, primals, strict=True)]


def _total(values: list, like) -> Any:
    """The sum of the values (pytrees of the same structure), a symbolic zero if there are none."""
    if not values:
        return [ad.Zero.from_primal_value(v) for v in like]
    return [functools.reduce(jnp.add, column) for column in zip(*values, strict=True)]


def _nonzero(tangents) -> bool:
    return not all(_is_zero(t) for t in tangents)


def _undefined(values) -> bool:
    return any(ad.is_undefined_primal(v) for v in values)


_UNSUPPORTED = "loop_sum: this combination of derivatives (transposing in params and features at once) is not supported"


def _tangent_half_cotangent(term: Term, spec: _Spec, n, ct, lin, par, con) -> list:
    """Cotangent of the tangent half of a tangent term's params (params known), given the
    term's output cotangent ct and linear operands lin: the base term's params_vjp."""
    if not isinstance(term.fn, _TangentFn):
        raise NotImplementedError(_UNSUPPORTED)
    half = len(par) // 2
    primal, tangent = par[:half], par[half:]
    if _undefined(primal) or _undefined(con) or _undefined(lin):
        raise NotImplementedError(_UNSUPPORTED)
    base_spec = dataclasses.replace(spec, params=spec.params.children()[0])
    cts = _params_vjp_p.bind(n, ct, *lin, *primal, *con, term=term.fn.base, spec=base_spec)
    return [c if ad.is_undefined_primal(t) else None for c, t in zip(cts, tangent, strict=True)]


def _sum_jvp(primals, tangents, *, term, spec):
    n, *flat = primals
    _, *dots = tangents
    lin, par, con = spec.split(flat)
    lin_dot, par_dot, _ = spec.split(dots)
    outs = _sum_p.bind(n, *flat, term=term, spec=spec)
    parts = []
    if _nonzero(lin_dot):
        parts.append(_sum_p.bind(n, *_instantiate(lin_dot, lin), *par, *con, term=term, spec=spec))
    if _nonzero(par_dot):
        t_term, t_spec = _tangent_problem(term, spec)
        parts.append(_sum_p.bind(n, *lin, *par, *_instantiate(par_dot, par), *con, term=t_term, spec=t_spec))
    return outs, _total(parts, outs)


def _sum_transpose(cts, n, *flat, term, spec):
    (ct,) = cts
    lin, par, con = spec.split(flat)
    result = [None] * (1 + len(flat))
    if _is_zero(ct):
        return result
    if _undefined(par):  # a tangent term, transposed in its tangent params
        result[1 + len(lin) : 1 + len(lin) + len(par)] = [None] * (len(par) // 2) + _tangent_half_cotangent(
            term, spec, n, ct, lin, par, con
        )
        return result
    if _undefined(con):
        raise NotImplementedError(_UNSUPPORTED)
    lin_cts = _transpose_p.bind(n, ct, *par, *con, term=term, spec=spec)
    result[1 : 1 + len(lin)] = [c if ad.is_undefined_primal(x) else None for c, x in zip(lin_cts, lin, strict=True)]
    return result


def _transpose_jvp(primals, tangents, *, term, spec):
    n, ct, *rest = primals
    _, ct_dot, *rest_dots = tangents
    par = rest[: spec.sizes[1]]
    con = rest[spec.sizes[1] :]
    par_dot = rest_dots[: spec.sizes[1]]
    outs = _transpose_p.bind(n, ct, *rest, term=term, spec=spec)
    parts = []
    if not _is_zero(ct_dot):
        parts.append(_transpose_p.bind(n, ct_dot, *rest, term=term, spec=spec))
    if _nonzero(par_dot):
        t_term, t_spec = _tangent_problem(term, spec)
        parts.append(_transpose_p.bind(n, ct, *par, *_instantiate(par_dot, par), *con, term=t_term, spec=t_spec))
    return outs, _total(parts, outs)


def _transpose_transpose(cts, n, ct, *rest, term, spec):
    par = rest[: spec.sizes[1]]
    con = rest[spec.sizes[1] :]
    result = [None] * (2 + len(rest))
    if all(_is_zero(c) for c in cts):
        return result
    lin_cts = _instantiate(cts, [jnp.zeros(s.shape, s.dtype) for s in spec.linear_shapes])
    if _undefined(par):  # transposed in the tangent params: <c_lin, T(ct; p, p')> = <p', vjp_p(fn(c_lin))^T ct>
        result[2 : 2 + len(par)] = [None] * (len(par) // 2) + _tangent_half_cotangent(
            term, spec, n, ct, lin_cts, par, con
        )
        return result
    if _undefined(con) or not ad.is_undefined_primal(ct):
        raise NotImplementedError(_UNSUPPORTED)
    (result[1],) = _sum_p.bind(n, *lin_cts, *par, *con, term=term, spec=spec)
    return result


def _params_vjp_jvp(primals, tangents, *, term, spec):
    n, ct, *flat = primals
    _, ct_dot, *dots = tangents
    lin, par, con = spec.split(flat)
    lin_dot, par_dot, _ = spec.split(dots)
    outs = _params_vjp_p.bind(n, ct, *flat, term=term, spec=spec)
    parts = []
    if not _is_zero(ct_dot):
        parts.append(_params_vjp_p.bind(n, ct_dot, *flat, term=term, spec=spec))
    if _nonzero(lin_dot):
        parts.append(_params_vjp_p.bind(n, ct, *_instantiate(lin_dot, lin), *par, *con, term=term, spec=spec))
    if _nonzero(par_dot):  # d/dp of vjp_p fn(ct) along p': the primal half of the tangent term's params_vjp
        t_term, t_spec = _tangent_problem(term, spec)
        both = _params_vjp_p.bind(n, ct, *lin, *par, *_instantiate(par_dot, par), *con, term=t_term, spec=t_spec)
        parts.append(both[: len(par)])
    return outs, _total(parts, outs)


def _params_vjp_transpose(cts, n, ct, *flat, term, spec):
    lin, par, con = spec.split(flat)
    result = [None] * (2 + len(flat))
    if _undefined(con):
        raise NotImplementedError(_UNSUPPORTED)
    if all(_is_zero(c) for c in cts):
        return result
    if _undefined(par):  # second order in params: transposed in a tangent term's tangent half
        result[2 + len(lin) : 2 + len(lin) + len(par)] = _hessian_transpose(cts, n, ct, lin, par, con, term, spec)
        return result
    par_cts = _instantiate(cts, par)
    t_term, t_spec = _tangent_problem(term, spec)
    if ad.is_undefined_primal(ct) and not _undefined(lin):  # <c_p, vjp_p fn(lin)^T ct> = <jvp_p fn(lin) c_p, ct>
        (result[1],) = _sum_p.bind(n, *lin, *par, *par_cts, *con, term=t_term, spec=t_spec)
        return result
    if _undefined(lin) and not ad.is_undefined_primal(ct):  # transpose of lin -> jvp_p fn(lin) c_p, applied to ct
        lin_cts = _transpose_p.bind(n, ct, *par, *par_cts, *con, term=t_term, spec=t_spec)
        result[2 : 2 + len(lin)] = [c if ad.is_undefined_primal(x) else None for c, x in zip(lin_cts, lin, strict=True)]
        return result
    raise NotImplementedError(_UNSUPPORTED)


def _hessian_transpose(cts, n, ct, lin, par, con, term: Term, spec: _Spec) -> list:
    """Transpose of a tangent term's params_vjp in its tangent half p' (everything else known).

    Its primal-half output is ``sum_t (d2 fn / d p2)[p']^T ct``, linear and symmetric in p';
    its tangent-half output ``sum_t (d fn / d p)^T ct`` does not depend on p'.  So the
    transpose, for cotangent c of the primal half, is the primal half of the same
    params_vjp with c in place of p'.
    """
    if not isinstance(term.fn, _TangentFn) or _undefined(lin) or ad.is_undefined_primal(ct):
        raise NotImplementedError(_UNSUPPORTED)
    half = len(par) // 2
    primal, tangent = par[:half], par[half:]
    if _undefined(primal):
        raise NotImplementedError(_UNSUPPORTED)
    c = _instantiate(list(cts[:half]), primal)
    out = _params_vjp_p.bind(n, ct, *lin, *primal, *c, *con, term=term, spec=spec)[:half]
    return [None] * half + [o if ad.is_undefined_primal(t) else None for o, t in zip(out, tangent, strict=True)]


ad.primitive_jvps[_sum_p] = _sum_jvp
ad.primitive_transposes[_sum_p] = _sum_transpose
ad.primitive_jvps[_transpose_p] = _transpose_jvp
ad.primitive_transposes[_transpose_p] = _transpose_transpose
ad.primitive_jvps[_params_vjp_p] = _params_vjp_jvp
ad.primitive_transposes[_params_vjp_p] = _params_vjp_transpose


# --------------------------------------------------------------------------------------
# Batching: the batch becomes part of every term (jax.vmap of fn), and a batched trip
# count becomes the largest one, with the terms past each element's own count masked.
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _BatchedFn:
    """The term fn of a batched problem: the original fn vmapped over axis 0 of the flat
    operands marked in `batched` (original order: linear, params, consts), with term t of
    batch element b zero when t >= counts[b] (counts: the last const)."""

    fn: Callable
    spec: _Spec
    batched: tuple[bool, ...]

    def __call__(self, t, linear, params, consts):
        *inner, counts = consts
        flat = [*jax.tree_util.tree_leaves(linear), *jax.tree_util.tree_leaves(params), *inner]

        def one(count, *flat):
            value = self.fn(t, *self.spec.trees(*self.spec.split(list(flat))))
            return jnp.where(t < count, value, jnp.zeros_like(value))

        return jax.vmap(one, in_axes=(0, *[0 if b else None for b in self.batched]))(counts, *flat)


@dataclasses.dataclass(frozen=True)
class _BatchedTranspose:
    """The original term's hand-written transpose for a batched problem (see _BatchedFn):
    per element, masked, and summed over the batch for the linear operands that are not
    batched (their cotangent is the sum of every element's)."""

    term: Term
    spec: _Spec
    batched: tuple[bool, ...]

    def __call__(self, t, ct, params, consts, linear_shapes):
        *inner, counts = consts
        n_lin, n_par, _ = self.spec.sizes
        par_axes = [0 if b else None for b in self.batched[n_lin : n_lin + n_par]]
        con_axes = [0 if b else None for b in self.batched[n_lin + n_par :]]

        def one(count, ct, par, con):
            cts = _term_transpose(self.term, self.spec, t, ct, par, con)
            return [jnp.where(t < count, c, jnp.zeros_like(c)) for c in cts]

        per_element = jax.vmap(one, in_axes=(0, 0, par_axes, con_axes))(
            counts, ct, jax.tree_util.tree_leaves(params), list(inner)
        )
        summed = [c if b else jnp.sum(c, axis=0) for c, b in zip(per_element, self.batched[:n_lin], strict=True)]
        return self.spec.linear.unflatten(summed)


@dataclasses.dataclass(frozen=True)
class _BatchedParamsTranspose:
    """The original term's hand-written params transpose for a batched problem (see
    _BatchedFn): per element and masked (params are always batched here)."""

    term: Term
    spec: _Spec
    batched: tuple[bool, ...]

    def __call__(self, t, ct, linear, params, consts):
        *inner, counts = consts
        n_lin, n_par, _ = self.spec.sizes
        lin_axes = [0 if b else None for b in self.batched[:n_lin]]
        con_axes = [0 if b else None for b in self.batched[n_lin + n_par :]]

        def one(count, ct, lin, par, con):
            cts = _term_params_transpose(self.term, self.spec, t, ct, lin, par, con)
            return [jnp.where(t < count, c, jnp.zeros_like(c)) for c in cts]

        flat = jax.vmap(one, in_axes=(0, 0, lin_axes, [0] * n_par, con_axes))(
            counts, ct, jax.tree_util.tree_leaves(linear), jax.tree_util.tree_leaves(params), list(inner)
        )
        return self.spec.params.unflatten(flat)


def _front(x, dim, size: int):
    """x with its batch axis first, broadcast to `size` if it has none."""
    if dim is None:
        return jnp.broadcast_to(x, (size, *jnp.shape(x)))
    return batching.bdim_at_front(x, dim, size)


def _batch_size(args, dims) -> int:
    return next(a.shape[d] for a, d in zip(args, dims, strict=True) if d is not None)


def _cut(values, sizes: tuple[int, ...]) -> list[list]:
    """values cut into consecutive groups of the given sizes, and the rest as a last group."""
    values, groups, start = list(values), [], 0
    for size in sizes:
        groups.append(values[start : start + size])
        start += size
    return [*groups, values[start:]]


def _counts(n, n_dim, size: int) -> tuple[jax.Array, jax.Array]:
    """(largest trip count, per-element trip counts (size,))."""
    counts = _front(n, n_dim, size).astype(jnp.int32)
    return jnp.max(counts, initial=0), counts


def _group(values: list, dims: list, size: int, force: bool) -> tuple[list, list[bool]]:
    """Operands with their batch axis first where they have one (all of them if force)."""
    batched = [force or d is not None for d in dims]
    return [_front(v, d, size) if b else v for v, d, b in zip(values, dims, batched, strict=True)], batched


def _batched(term: Term, spec: _Spec, batched: list[bool], linear_shapes) -> tuple[Term, _Spec]:
    """The term and spec of the batched problem (one more const: the per-element counts)."""
    batched = tuple(batched)
    transpose = _BatchedTranspose(term, spec, batched) if term.transpose is not None else None
    params_transpose = _BatchedParamsTranspose(term, spec, batched) if term.params_transpose is not None else None
    consts = jax.tree_util.tree_structure([0] * (spec.sizes[2] + 1))
    new_spec = _Spec(spec.linear, spec.params, consts, tuple(linear_shapes))
    return Term(_BatchedFn(term.fn, spec, batched), transpose, params_transpose, term.single), new_spec


def _shapes(values: list, spec: _Spec) -> list[jax.ShapeDtypeStruct]:
    return [jax.ShapeDtypeStruct(jnp.shape(v), s.dtype) for v, s in zip(values, spec.linear_shapes, strict=True)]


def _sum_batch(args, dims, *, term, spec):
    size = _batch_size(args, dims)
    n_max, counts = _counts(args[0], dims[0], size)
    flat, batched = _group(list(args[1:]), list(dims[1:]), size, force=False)
    new_term, new_spec = _batched(term, spec, batched, _shapes(flat[: spec.sizes[0]], spec))
    return _sum_p.bind(n_max, *flat, counts, term=new_term, spec=new_spec), [0]


def _transpose_batch(args, dims, *, term, spec):
    # Operands (n, ct, *params, *consts); the outputs, one per linear operand, are per element.
    size = _batch_size(args, dims)
    n_max, counts = _counts(args[0], dims[0], size)
    ct = _front(args[1], dims[1], size)
    rest, rest_batched = _group(list(args[2:]), list(dims[2:]), size, force=False)
    shapes = [jax.ShapeDtypeStruct((size, *s.shape), s.dtype) for s in spec.linear_shapes]
    new_term, new_spec = _batched(term, spec, [True] * spec.sizes[0] + rest_batched, shapes)
    outs = _transpose_p.bind(n_max, ct, *rest, counts, term=new_term, spec=new_spec)
    return outs, [0] * len(outs)


def _params_vjp_batch(args, dims, *, term, spec):
    # Operands (n, ct, *linear, *params, *consts); the outputs (params cotangents) are per element.
    size = _batch_size(args, dims)
    n_max, counts = _counts(args[0], dims[0], size)
    n_lin, n_par, _ = spec.sizes
    ct = _front(args[1], dims[1], size)
    lin, lin_b = _group(list(args[2 : 2 + n_lin]), list(dims[2 : 2 + n_lin]), size, force=False)
    par, par_b = _group(
        list(args[2 + n_lin : 2 + n_lin + n_par]), list(dims[2 + n_lin : 2 + n_lin + n_par]), size, True
    )
    con, con_b = _group(list(args[2 + n_lin + n_par :]), list(dims[2 + n_lin + n_par :]), size, force=False)
    new_term, new_spec = _batched(term, spec, lin_b + par_b + con_b, _shapes(lin, spec))
    outs = _params_vjp_p.bind(n_max, ct, *lin, *par, *con, counts, term=new_term, spec=new_spec)
    return outs, [0] * len(outs)


batching.primitive_batchers[_sum_p] = _sum_batch
batching.primitive_batchers[_transpose_p] = _transpose_batch
batching.primitive_batchers[_params_vjp_p] = _params_vjp_batch
