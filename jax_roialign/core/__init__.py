"""The shared core: sampling arithmetic, box bins, dtype rules and jit guards.

Both implementations (``jax_roialign.xla`` and ``jax_roialign.kernels``) build on these
modules, and nothing here imports either of them (``docs/architecture.md``):

- :mod:`~jax_roialign.core.sampling`: per-axis sample coordinates and bilinear taps,
  exactly as ``docs/conventions.md`` writes them;
- :mod:`~jax_roialign.core.bins`: the bins of every box under a :class:`RoIAlignSpec`,
  and the accumulation dtype;
- :mod:`~jax_roialign.core.guards`: containment under jit (bad batch indices,
  non-finite boxes) and bounded memory for any number of boxes;
- :mod:`~jax_roialign.core.resize`: the per-axis tables of every framework's resize
  (static, NumPy) and their integer (uint8) variants;
- :mod:`~jax_roialign.core.paste`: the per-axis weights of Mask R-CNN mask pasting.
"""
