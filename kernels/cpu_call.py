"""The CPU kernels as JAX operations: one primitive for every custom call, and the one-term sums built on it.

Each kernel family (``tap_sum_cpu``: avg's tap sum; ``max_pool_cpu``: the read at max's
winning samples) is a form ``out = Read(x; wy, wx)`` linear in the features ``x`` and in
each per-axis weight table, with three C++ contractions: ``Read``, its transpose in the
features and its transpose in the tables (both tables in one pass).  :class:`Family`
names them; :func:`one_term_sum` makes them the term, transpose and params-transpose of a
one-term ``core.loop_sum``, whose rules give jit, vmap, grad, jvp, linear_transpose,
higher orders, checkpoint and scan.  The read's own derivative in the tables (forward
mode in the boxes) is again that sum, of the tangent tables.

Every call is the primitive ``roialign_cpu_kernel``: the custom call where the program
runs on this CPU, and plain JAX of the same contraction (``PORTABLE``, filled in by
each family's module) where it cannot: in ``jax.export`` (which may not serialize this library's
calls) and on every other platform.  Batched, it runs once per element (``lax.map``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jax.extend.core import Primitive
from jax.interpreters import batching, mlir

from jax_roialign.core import guards
from jax_roialign.core.avals import result_aval
from jax_roialign.core.loop_sum import Term, loop_sum

from . import cpu_library
from .roi_align import sequential_batching


def _suffix(dtype) -> str:
    if dtype == jnp.float32:
        return "F32"
    if dtype == jnp.float64:
        return "F64"
    raise TypeError(f"the CPU kernels take float32 or float64, got {dtype}")


# Plain-JAX twins of the custom calls, by kernel name: fn(*operands, results=..., **attrs) -> list.
PORTABLE: dict[str, Callable[..., list]] = {}


def _kernel_call(op: str, results: tuple[jax.ShapeDtypeStruct, ...], attrs: tuple):
    def call(*args):
        cpu_library.load()
        target = f"JaxRoialign{op}{_suffix(args[0].dtype)}"
        return list(jax.ffi.ffi_call(target, results)(*args, **dict(attrs)))

    return call


def _portable(op: str, results: tuple[jax.ShapeDtypeStruct, ...], attrs: tuple):
    return functools.partial(PORTABLE[op], results=results, **dict(attrs))


_kernel_p = Primitive("roialign_cpu_kernel")
_kernel_p.multiple_results = True


@functools.partial(jax.jit, static_argnames=("op", "results", "attrs"))
def _kernel_eager(*args, op, results, attrs):
    return _kernel_p.bind(*args, op=op, results=results, attrs=attrs)


def _lower_on_cpu(ctx, *args, op, results, attrs):
    # jax.export may not serialize a custom call of this library: export plain JAX instead.
    portable = ctx.module_context.lowering_parameters.for_export
    fun = (_portable if portable else _kernel_call)(op, results, attrs)
    return mlir.lower_fun(fun, multiple_results=True)(ctx, *args)


def _lower_elsewhere(ctx, *args, op, results, attrs):
    return mlir.lower_fun(_portable(op, results, attrs), multiple_results=True)(ctx, *args)


_kernel_p.def_impl(_kernel_eager)
_kernel_p.def_abstract_eval(lambda *args, op, results, attrs: [result_aval(r.shape, r.dtype, args) for r in results])
mlir.register_lowering(_kernel_p, _lower_elsewhere)
mlir.register_lowering(_kernel_p, _lower_on_cpu, platform="cpu")
batching.primitive_batchers[_kernel_p] = sequential_batching(_kernel_p)


def call(op: str, results: tuple[jax.ShapeDtypeStruct, ...], *args: jax.Array, attrs: tuple = ()) -> list[jax.Array]:
    """Kernel ``op`` (``JaxRoialign<op><F32|F64>``) of args, with hashable attrs ((name, value), ...)."""
    _suffix(args[0].dtype)  # raises for a dtype the kernels do not take
    return _kernel_p.bind(*args, op=op, results=tuple(results), attrs=tuple(attrs))


@dataclasses.dataclass(frozen=True)
class Family:
    """A kernel family (hashable: a static parameter).

    ``prefix`` names its kernels (``<prefix>Read``, ``<prefix>FeaturesTranspose``,
    ``<prefix>WeightsTranspose``); ``order(weights, consts)`` orders the tables as the
    kernels take them after the value operand(s); ``attrs`` are the kernels' attributes.
    """

    prefix: str
    order: Callable[[tuple, tuple], list]
    attrs: tuple = ()

    def read(self, x, weights, consts) -> jax.Array:
        wy, wx = weights
        shape = (wy.shape[0], wy.shape[1], wx.shape[1], x.shape[-1])
        return call(
            f"{self.prefix}Read",
            (jax.ShapeDtypeStruct(shape, x.dtype),),
            x,
            *self.order(weights, consts),
            attrs=self.attrs,
        )[0]


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _read(family: Family, x, weights, consts):
    return family.read(x, weights, consts)


@functools.partial(_read.defjvp, symbolic_zeros=True)
def _read_jvp(family, primals, tangents):
    x, (wy, wx), consts = primals
    x_dot, (wy_dot, wx_dot), _ = tangents
    out = _read(family, x, (wy, wx), consts)
    # Linear in each of x, wy, wx: the derivative is a sum of reads, each with one operand
    # replaced by its tangent (as one-term sums, so that they transpose to the kernels).
    parts = []
    if not isinstance(x_dot, SymbolicZero):
        parts.append(one_term_sum(family, x_dot, (wy, wx), consts))
    if not isinstance(wy_dot, SymbolicZero):
        parts.append(one_term_sum(family, x, (wy_dot, wx), consts))
    if not isinstance(wx_dot, SymbolicZero):
        parts.append(one_term_sum(family, x, (wy, wx_dot), consts))
    return out, functools.reduce(jnp.add, parts) if parts else jnp.zeros_like(out)


@dataclasses.dataclass(frozen=True)
class _Read:
    family: Family

    def __call__(self, t, x, weights, consts):
        return _read(self.family, x, weights, consts)


@dataclasses.dataclass(frozen=True)
class _FeaturesTranspose:
    family: Family

    def __call__(self, t, ct, weights, consts, shapes):
        op = f"{self.family.prefix}FeaturesTranspose"
        return call(op, (shapes,), ct, *self.family.order(weights, consts), attrs=self.family.attrs)[0]


@dataclasses.dataclass(frozen=True)
class _WeightsTranspose:
    family: Family

    def __call__(self, t, ct, x, weights, consts):
        shapes = tuple(jax.ShapeDtypeStruct(w.shape, w.dtype) for w in weights)
        op = f"{self.family.prefix}WeightsTranspose"
        return tuple(call(op, shapes, ct, x, *self.family.order(weights, consts), attrs=self.family.attrs))


def one_term_sum(family: Family, x: jax.Array, weights: tuple[jax.Array, jax.Array], consts: tuple) -> jax.Array:
    """The family's read of x with tables (wy, wx) and consts, differentiable in x and the tables."""
    term = Term(_Read(family), _FeaturesTranspose(family), _WeightsTranspose(family), single=True)
    return loop_sum(term, jnp.int32(1), x, weights, consts)


@jax.custom_jvp
def mark_nonfinite(out: jax.Array, finite: jax.Array) -> jax.Array:
    """``guards.mark_nonfinite`` for a result whose non-finite boxes read nothing.

    Their derivative is already zero in every direction, so the tangent passes through
    unmasked, and the cotangent needs no masking pass over the whole result.
    """
    return guards.mark_nonfinite(out, finite)


@mark_nonfinite.defjvp
def _mark_nonfinite_jvp(primals, tangents):
    out, finite = primals
    return mark_nonfinite(out, finite), tangents[0]
