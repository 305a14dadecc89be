"""The four weighted corner terms of a bilinear read, and how max modes combine them.

A sample's bilinear read (``docs/conventions.md`` section 1.2) is the sum of four
weighted corner terms; "corner_max" (onnxruntime) keeps the largest instead.  Both
implementations read samples through these functions, so their max modes agree to the
bit, and corner_max's cotangent shares (JAX's tie rule for ``jnp.maximum``) are encoded
the same way in both.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax_roialign.core import sampling

# corner_max: each corner's share of the cotangent, 2**-code (code 4: no share), 3 bits a corner.
_SHARE_BITS = 3
_NO_SHARE = 4


def combine_terms(terms: list[jax.Array], corner: bool) -> jax.Array:
    """A sample's value from its four weighted corner terms, in the order of operations both paths use.

    "max" adds them (the interpolated value); "corner_max" takes onnxruntime's largest term.
    """
    if corner:
        return jnp.maximum(jnp.maximum(jnp.maximum(terms[0], terms[1]), terms[2]), terms[3])
    return terms[0] + terms[1] + terms[2] + terms[3]


def encode_shares(terms: list[jax.Array]) -> jax.Array:
    """corner_max: int32 code of each corner's share of the cotangent (JAX's tie rule for max).

    The shares are the derivatives of the corner_max combination with respect to
    its terms: 1 for a unique largest term; ties split halves per ``jnp.maximum``
    (so 1/2, 1/4, 1/8), exactly as autodiff of the XLA path's combination gives.
    """
    _, pullback = jax.vjp(lambda *t: combine_terms(list(t), corner=True), *terms)
    code = jnp.zeros(terms[0].shape, jnp.int32)
    for i, share in enumerate(pullback(jnp.ones_like(terms[0]))):
        exponent = jnp.where(share >= 1, 0, jnp.where(share >= 0.5, 1, jnp.where(share >= 0.25, 2, 3)))
        exponent = jnp.where(share == 0, _NO_SHARE, exponent)
        code = code | (exponent << (_SHARE_BITS * i))
    return code


def decode_shares(code: jax.Array, dtype: jnp.dtype) -> list[jax.Array]:
    """The four shares that :func:`encode_shares` encoded, as exact powers of two (or 0)."""
    shares = []
    for i in range(4):
        exponent = (code >> (_SHARE_BITS * i)) & ((1 << _SHARE_BITS) - 1)
        share = jnp.where(exponent == 0, 1.0, jnp.where(exponent == 1, 0.5, jnp.where(exponent == 2, 0.25, 0.125)))
        shares.append(jnp.where(exponent == _NO_SHARE, 0.0, share).astype(dtype))
    return shares


def corners(ty: sampling.Taps, tx: sampling.Taps) -> list[tuple[jax.Array, jax.Array, jax.Array]]:
    """(row, column, weight) of the four corners, in the order both paths combine them."""
    return [
        (ty.lo, tx.lo, ty.w_lo * tx.w_lo),
        (ty.lo, tx.hi, ty.w_lo * tx.w_hi),
        (ty.hi, tx.lo, ty.w_hi * tx.w_lo),
        (ty.hi, tx.hi, ty.w_hi * tx.w_hi),
    ]
