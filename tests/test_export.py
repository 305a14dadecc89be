"""roi_align through jax.export: serialized StableHLO that deserializes and computes the same bits.

The box dimension K is exported symbolic.  It needs an upper bound (a constraint of the
symbolic shape): the XLA path decides in Python whether K boxes fit one chunk of its
bounded working set (jax_roialign.xla.guards.map_box_chunks), and jax.export can only
decide ``K <= chunk`` for a bounded K.  The batch dimension N may be symbolic too.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

import jax_roialign as jr
from tests import cases

pytest.importorskip("flatbuffers", reason="jax.export serialization needs flatbuffers")

N, H, W, C = 2, 12, 14, 3
SCALE = 0.5
OUTPUT_SIZE = (3, 4)
K_BOUND = "k <= 1024"
# Two calls that between them flip every convention axis: coordinates, grid, mode, layout.
# (Compiling each costs seconds on CPU, so the other combinations are left to the other tests.)
CONVENTIONS = {
    "aligned-fixed-avg-NHWC": (("aligned", True), ("sampling_ratio", 2), ("mode", "avg"), ("data_format", "NHWC")),
    "legacy-adaptive-max-NCHW": (("aligned", False), ("sampling_ratio", 0), ("mode", "max"), ("data_format", "NCHW")),
}


def _problem(data_format: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    """float32 features in data_format, edge-case plus random boxes, alternating batch indices."""
    features = cases.random_features(0, (N, H, W, C), "float32")
    if data_format == "NCHW":
        features = features.transpose(0, 3, 1, 2)
    boxes = np.concatenate([cases.edge_boxes(H, W, SCALE), cases.random_boxes(0, 4, H, W, SCALE)])
    batch = np.arange(len(boxes), dtype=np.int32) % N
    return jnp.asarray(features, jnp.float32), jnp.asarray(boxes, jnp.float32), jnp.asarray(batch)


@functools.cache
def _pool(name: str):
    """The jitted call of a convention on the XLA path, one per name so that its compilations are reused.

    impl="xla": an exported program is the program that runs here, to the bit.  (The CPU
    kernels export their plain-JAX twins: tests/kernels/test_cpu.py.)
    """
    kwargs = dict(CONVENTIONS[name])
    return jax.jit(
        lambda x, b, i: jr.roi_align(x, b, OUTPUT_SIZE, batch_indices=i, spatial_scale=SCALE, impl="xla", **kwargs)
    )


def _specs(features: jax.Array, dims: str) -> list[jax.ShapeDtypeStruct]:
    """Argument specs with the dimensions (N, K) given as symbolic-shape text, e.g. "2, k"."""
    n, k = export.symbolic_shape(dims, constraints=(K_BOUND,))
    return [
        jax.ShapeDtypeStruct((n,) + features.shape[1:], jnp.float32),
        jax.ShapeDtypeStruct((k, 4), jnp.float32),
        jax.ShapeDtypeStruct((k,), jnp.int32),
    ]


def _round_trip(fn, specs: list[jax.ShapeDtypeStruct], vjp_order: int) -> export.Exported:
    """Export fn for specs, serialize (with vjp_order derivatives) and deserialize."""
    blob = export.export(fn)(*specs).serialize(vjp_order=vjp_order)
    return export.deserialize(bytearray(blob))


@pytest.mark.parametrize("name", CONVENTIONS)
def test_round_trip_with_symbolic_boxes_is_bitwise_with_its_vjp(name):
    features, boxes, batch = _problem(dict(CONVENTIONS[name])["data_format"])
    pool = _pool(name)
    restored = _round_trip(pool, _specs(features, f"{N}, k"), vjp_order=1)
    out = pool(features, boxes, batch)
    np.testing.assert_array_equal(restored.call(features, boxes, batch), out)

    # The serialized VJP, called as one function, against jax.vjp of the original (features and boxes).
    cotangent = jnp.asarray(np.random.default_rng(1).standard_normal(out.shape), jnp.float32)
    got = restored.vjp().call(features, boxes, batch, cotangent)[:2]
    want = jax.jit(lambda x, b, ct: jax.vjp(lambda x, b: pool(x, b, batch), x, b)[1](ct))(features, boxes, cotangent)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_symbolic_batch_and_boxes_are_bitwise_at_other_shapes_with_the_vjp():
    name = "aligned-fixed-avg-NHWC"
    features, boxes, batch = _problem("NHWC")
    pool = _pool(name)
    restored = _round_trip(pool, _specs(features, "n, k"), vjp_order=1)
    np.testing.assert_array_equal(restored.call(features, boxes, batch), pool(features, boxes, batch))
    # One image and five boxes: the exported function is not specialized to the traced shapes.
    x, b, i = features[:1], boxes[:5], jnp.zeros(5, jnp.int32)
    out = pool(x, b, i)
    np.testing.assert_array_equal(restored.call(x, b, i), out)
    cotangent = jnp.asarray(np.random.default_rng(2).standard_normal(out.shape), jnp.float32)
    got = restored.vjp().call(x, b, i, cotangent)[:2]
    want = jax.vjp(lambda x, b: pool(x, b, i), x, b)[1](cotangent)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
