"""Pytest configuration: the x64 fixture and shared helpers."""

from __future__ import annotations

import jax
import pytest


@pytest.fixture
def x64():
    """Run the test with 64-bit types enabled (float64 features are then honoured)."""
    with jax.enable_x64(True):
        yield
