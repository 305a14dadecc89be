"""Abstract values of the library's primitives' results, and arrays with shard_map's varying-ness."""

from __future__ import annotations

import jax


def result_aval(shape: tuple[int, ...], dtype, operands: tuple) -> jax.core.ShapedArray:
    """The result's abstract value, varying over every manual mesh axis an operand varies over.

    Under ``shard_map`` an array is "varying" over the mesh axes along which its value
    differs between devices; a result computed from varying operands varies too.
    """
    varying = frozenset().union(*(_varying_axes(o) for o in operands))
    return _shaped_array(shape, dtype, varying)


def _varying_axes(aval) -> frozenset:
    mat = getattr(aval, "mat", None)  # jax >= 0.10: ManualAxisType
    if mat is not None:
        return frozenset(mat.varying)
    return frozenset(getattr(aval, "vma", ()))


def _shaped_array(shape, dtype, varying: frozenset) -> jax.core.ShapedArray:
    if not varying:
        return jax.core.ShapedArray(shape, dtype)
    # shard_map's manual axes live in JAX's core; the result is replicated over the
    # current (manual) mesh and varies over the operands' axes.
    from jax._src import core as jax_core

    sharding = jax_core.get_cur_mesh_sharding()
    if hasattr(jax_core, "ManualAxisType"):  # jax >= 0.10
        mat = jax_core.ManualAxisType(varying=varying, unreduced=frozenset(), reduced=frozenset())
        return jax_core.ShapedArray(shape, dtype, sharding=sharding, manual_axis_type=mat)
    return jax_core.ShapedArray(shape, dtype, sharding=sharding, vma=varying)


def zeros_like_varying(shape: tuple[int, ...], dtype, *operands: jax.Array) -> jax.Array:
    """Zeros of shape and dtype that vary (under shard_map) over every axis the operands vary over.

    A loop's carry must have the varying-ness of what the loop body adds to it; zeros
    made from constants are invariant, so they pick it up here through a select whose
    condition is constantly false (no arithmetic with the operands' values, which may
    be NaN; XLA folds it away).
    """
    zeros = jax.numpy.zeros(shape, dtype)
    for operand in operands:
        probe = jax.numpy.sum(jax.numpy.reshape(operand, (-1,))[:1]).astype(dtype)
        zeros = jax.lax.select(jax.numpy.zeros(shape, bool), jax.numpy.broadcast_to(probe, shape), zeros)
    return zeros
