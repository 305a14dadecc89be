"""``python -m jax_roialign``: see jax_roialign.cli."""

import sys

from jax_roialign.cli import main

sys.exit(main())
