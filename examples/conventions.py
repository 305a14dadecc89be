"""Draw where each RoIAlign convention samples one box: docs/conventions.png.

    python examples/conventions.py                       # the README's figure
    python examples/conventions.py --box 0.5,1,4,3.5 --output-size 3 --sampling-ratio 0 --output mine.png

Same flags as ``python -m jax_roialign plot``; needs matplotlib (``pip install "jax-roialign[viz]"``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from jax_roialign.tools.plot import command

README_FIGURE = Path(__file__).resolve().parents[1] / "docs" / "conventions.png"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the plot flags (default output: docs/conventions.png) and write the figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    command.configure_parser(parser)
    parser.set_defaults(output=README_FIGURE)
    return command.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
