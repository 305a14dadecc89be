"""The tooling wing: the command line and what its commands run.

``demo``, ``check`` (conformance), ``bench`` and ``plot`` live here, with the seeded
problems and benchmark workloads they share with the tests.  Nothing in the op's import
path imports this package (``import jax_roialign`` does not), so the op never pays for
its imports; see ``docs/architecture.md``.
"""
