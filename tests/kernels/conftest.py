"""Pytest configuration of the kernel tests: every test compiles unoptimized (see tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _kernel_tests_compile_unoptimized(unoptimized_compiles):
    yield
