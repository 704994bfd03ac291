"""Command line: `perpetua run | demo | replay | snapshot | admin | verify`.

Every subcommand is a placeholder for now: it exits with code 2 and names the issue that builds
it. Whoever builds a subcommand replaces its placeholder with a real handler.
"""

import argparse
import sys
from collections.abc import Sequence

from perpetua import __version__

__all__ = ["build_parser", "main"]

EXIT_NOT_BUILT = 2

# subcommand -> (one-line help, number of the issue that builds it)
PLANNED_COMMANDS: dict[str, tuple[str, int]] = {
    "run": ("serve the exchange: REST and WebSocket API, sequencer and core", 5),
    "demo": ("a live demo market: simulated index feeds and trading bots", 6),
    "replay": ("rebuild state from a data dir; print seq, state_hash and totals", 4),
    "snapshot": ("take a snapshot of a data dir now", 4),
    "admin": ("create users and API keys, credit test funds", 5),
    "verify": ("check a data dir's journal and snapshots", 4),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perpetua",
        description="Perpetua: a self-hosted crypto derivatives exchange (BitMEX-compatible).",
    )
    parser.add_argument("--version", action="version", version=f"perpetua {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, _issue) in PLANNED_COMMANDS.items():
        subparsers.add_parser(name, help=help_text, description=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _help_text, issue = PLANNED_COMMANDS[args.command]
    print(f"perpetua {args.command}: not built yet: see issue {issue}", file=sys.stderr)
    return EXIT_NOT_BUILT


if __name__ == "__main__":
    sys.exit(main())
