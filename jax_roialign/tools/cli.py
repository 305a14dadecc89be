"""Command line: ``python -m jax_roialign COMMAND`` (also installed as ``jax-roialign``).

Every subcommand is one row of :data:`SUBCOMMANDS`: its name, its help line and the
module that implements it.  Such a module exposes
``configure_parser(parser: argparse.ArgumentParser) -> None`` (its flags) and
``run(args: argparse.Namespace) -> int`` (the exit status); it is imported when the
parser is built, so it keeps heavy imports inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from typing import NamedTuple


class Subcommand(NamedTuple):
    """One subcommand: its name, its one-line help, and the module implementing it."""

    name: str
    help: str
    module: str


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand(
        "demo", "the 6x6 seed example under every framework's convention, side by side", "jax_roialign.tools.demo"
    ),
    Subcommand(
        "check",
        "run the cross-framework conformance cases against every installed framework and print a pass table",
        "jax_roialign.tools.conformance.command",
    ),
    Subcommand(
        "bench",
        "time forward and forward+backward on named workloads against every installed peer; table and JSON",
        "jax_roialign.tools.bench.command",
    ),
    Subcommand(
        "aot",
        "compile the Pallas kernels ahead of time for TPU v4..7x and an H100 (no device needed; the aot extra)",
        "jax_roialign.tools.aot.command",
    ),
    Subcommand(
        "device-check",
        "on a GPU/TPU machine: kernel tests compiled, determinism, timings vs xla and torchvision, roofline, verdict",
        "jax_roialign.tools.device_check",
    ),
    Subcommand(
        "plot",
        "where each convention samples one box (bins, samples, taps), drawn as a PNG",
        "jax_roialign.tools.plot.command",
    ),
)


def build_parser(subcommands: Sequence[Subcommand] = SUBCOMMANDS) -> argparse.ArgumentParser:
    """The ``jax-roialign`` parser with one subparser per subcommand (each module imported here)."""
    parser = argparse.ArgumentParser(prog="jax-roialign", description="RoIAlign for JAX, every convention named.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in subcommands:
        module = importlib.import_module(command.module)
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        module.configure_parser(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse argv (default: sys.argv[1:]) and run the subcommand; returns its exit status."""
    args = build_parser().parse_args(argv)
    return args.run(args)
