"""Pytest configuration: the x64 fixture and shared helpers."""

from __future__ import annotations

import jax
import pytest


@pytest.fixture
def x64():
    """Run the test with 64-bit types enabled (float64 features are then honoured)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture
def unoptimized_compiles():
    """Compile without XLA's optimization passes while the test runs.

    Interpret-mode Pallas kernels and the XLA reference are compiled anew for every
    shape and convention, and compiling dominates such tests; unoptimized compiles
    take about half as long.  Every assertion holds to float rounding either way.
    """
    flag = "jax_disable_most_optimizations"
    previous = jax.config.values[flag]
    jax.config.update(flag, True)
    yield
    jax.config.update(flag, previous)
