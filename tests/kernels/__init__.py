"""Tests of the Pallas kernels (jax_roialign.kernels), run in Pallas interpret mode."""
