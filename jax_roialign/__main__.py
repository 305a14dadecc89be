"""``python -m jax_roialign``: the command line of :mod:`jax_roialign.tools.cli`."""

import sys

from jax_roialign.tools.cli import main

sys.exit(main())
