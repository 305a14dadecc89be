"""Benchmarks (``python -m jax_roialign bench``): named workloads, ours and the peers, one process.

:mod:`~jax_roialign.tools.bench.timing` times this library, :mod:`~jax_roialign.tools.bench.peers`
the other frameworks, :mod:`~jax_roialign.tools.bench.report` writes the table and the plot, and
:mod:`~jax_roialign.tools.bench.command` is the command line.  The workloads are
:data:`jax_roialign.tools.arg_specs.WORKLOADS`.
"""
