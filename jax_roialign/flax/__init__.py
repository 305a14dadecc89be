"""Flax modules for RoIAlign: linen here (and in ``jax_roialign.flax.linen``), nnx in ``jax_roialign.flax.nnx``.

Needs Flax (``pip install "jax-roialign[flax]"``); importing this package, or either
submodule, without it raises an ImportError that says so.
"""

try:
    import flax  # noqa: F401  (only to give the install hint when Flax is missing)
except ImportError as err:
    raise ImportError('jax_roialign.flax needs Flax; install it with: pip install "jax-roialign[flax]"') from err

from jax_roialign.flax import linen, nnx
from jax_roialign.flax.linen import MultiScaleRoIAlign, RoIAlign

__all__ = ["MultiScaleRoIAlign", "RoIAlign", "linen", "nnx"]
