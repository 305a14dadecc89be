"""The conventions figure: where each convention samples one box (``python -m jax_roialign plot``).

:mod:`~jax_roialign.tools.plot.scene` computes what is drawn (from the library's own
arithmetic), :mod:`~jax_roialign.tools.plot.figure` draws it with matplotlib, and
:mod:`~jax_roialign.tools.plot.command` is the command line.
"""

from jax_roialign.tools.plot.figure import conventions_figure, save_conventions_figure

__all__ = ["conventions_figure", "save_conventions_figure"]
