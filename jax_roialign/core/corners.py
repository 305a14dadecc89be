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


def _tie_exponents(a: jax.Array, b: jax.Array, m: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The exponents e (share 2**-e, ``_NO_SHARE`` for none) of a and b in m = jnp.maximum(a, b),
    by JAX's rule: 1 to the one equal to m, halves when both are (none when neither, NaN)."""
    both = (a == m) & (b == m)
    return (jnp.where(a == m, jnp.where(both, 1, 0), _NO_SHARE), jnp.where(b == m, jnp.where(both, 1, 0), _NO_SHARE))


def encode_shares(terms: list[jax.Array]) -> jax.Array:
    """corner_max: int32 code of each corner's share of the cotangent (JAX's tie rule for max).

    The shares are the derivatives of :func:`combine_terms`' corner_max with respect to
    its terms, exactly as autodiff of it gives: 1 for a unique largest term; ties split
    halves per ``jnp.maximum`` (so 1/2, 1/4, 1/8).  A term's share is the product of its
    shares at each ``jnp.maximum`` on its way to the result, so its exponent is their sum;
    written with comparisons only (no autodiff), it stays one small fused computation.
    """
    m01 = jnp.maximum(terms[0], terms[1])
    m012 = jnp.maximum(m01, terms[2])
    e0, e1 = _tie_exponents(terms[0], terms[1], m01)
    e01, e2 = _tie_exponents(m01, terms[2], m012)
    e012, e3 = _tie_exponents(m012, terms[3], jnp.maximum(m012, terms[3]))
    exponents = (e0 + e01 + e012, e1 + e01 + e012, e2 + e012, e3)
    code = jnp.zeros(terms[0].shape, jnp.int32)
    for i, e in enumerate(exponents):
        code = code | (jnp.minimum(e, _NO_SHARE) << (_SHARE_BITS * i))
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
