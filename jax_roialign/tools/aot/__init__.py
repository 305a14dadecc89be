"""Ahead-of-time compiles of the Pallas kernels for TPUs and GPUs this machine lacks.

``targets`` (devices of compile-only topologies, the compile environment, ptxas reports),
``variants`` (the programs compiled), ``runner`` (a child process per target, a timeout
per compile), ``command`` (``python -m jax_roialign aot``).  Used by
``tests/kernels/test_aot.py`` and the device check; the op never imports it.
"""
