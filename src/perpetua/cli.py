"""Command line: `perpetua run | demo | replay | snapshot | verify | repair-journal | admin`.

Built so far (issue 4), over a data dir holding ``journal/`` and ``snapshots/``:
    replay          rebuild state; print seq, state_hash, conservation totals and replay rate
    snapshot        offline: recover, then write and verify a snapshot at the recovered seq
    verify          restore every snapshot and check it against a replay of the journal
    repair-journal  move journal damage into journal/quarantine/ (never deletes)
They print one JSON document on stdout, progress on stderr, and exit 1 with the reason on
stderr when the data dir cannot be read (corruption names file and offset).

``demo`` (issue 6) runs the exchange with simulated index feeds and trading bots
(``perpetua.demo``); it exits 1 on bad options before touching the data dir.

The other subcommands are placeholders: they exit with code 2 and name the issue that builds
them. Whoever builds one replaces its placeholder with a real handler.
"""

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from perpetua import __version__
from perpetua.services.admin_cli import AdminError, add_admin_parser, run_admin

__all__ = ["build_parser", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NOT_BUILT = 2
EXIT_ADMIN_FAILED = 1
ADMIN_HELP = "users and API keys: create-user, create-key, list-keys, disable-key, list-users"

# subcommand -> (one-line help, number of the issue that builds it)
PLANNED_COMMANDS: dict[str, tuple[str, int]] = {
    "run": ("serve the exchange: REST and WebSocket API, sequencer and core", 5),
    "demo": ("a live demo market: simulated index feeds and trading bots", 6),
}

DATA_DIR_COMMANDS: dict[str, str] = {
    "replay": "rebuild state from a data dir; print seq, state_hash, totals and replay rate",
    "snapshot": "take a snapshot of a data dir now (offline: not beside a running exchange)",
    "verify": "check a data dir's snapshots against a replay of its journal",
    "repair-journal": "quarantine journal damage so the data dir recovers (never deletes)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perpetua",
        description="Perpetua: a self-hosted crypto derivatives exchange (BitMEX-compatible).",
    )
    parser.add_argument("--version", action="version", version=f"perpetua {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, _issue) in PLANNED_COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == "run":
            _add_run_arguments(sub)
        if name == "demo":
            _add_demo_arguments(sub)
    add_admin_parser(subparsers, ADMIN_HELP)
    for name, help_text in DATA_DIR_COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--data-dir", type=Path, required=True, help="the exchange's data dir")
        if name == "replay":
            sub.add_argument("--from-scratch", action="store_true",
                             help="ignore snapshots; replay the whole journal")
            sub.add_argument("--read-only", action="store_true",
                             help="take no lock, change nothing (for a live data dir)")
            sub.add_argument("--no-audit", action="store_true",
                             help="skip the full state audit after replay")
    return parser


def _add_run_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--data-dir", type=Path, required=True, help="the exchange's data dir")
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sub.add_argument("--port", type=int, default=8000, help="port to listen on")
    sub.add_argument("--operator-key", default="",
                     help="x-operator-key for /api/v1/admin/* (default: $PERPETUA_OPERATOR_KEY"
                          " or a random key printed at start)")
    sub.add_argument("--no-rate-limits", action="store_true",
                     help="disable REST and WebSocket rate limits (benchmarks, local bots)")
    sub.add_argument("--no-store", action="store_true", help="do not run the read-model projector")
    sub.add_argument("--log-level", default="info", help="debug, info, warning, error")


def _add_demo_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--data-dir", type=Path, default=Path("data"),
                     help="where the demo keeps everything (default: ./data); reused on restart")
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sub.add_argument("--port", type=int, default=8000, help="port to listen on")
    sub.add_argument("--seed", type=int, default=1, help="seed of the index paths and the bots")
    sub.add_argument("--markets", default="",
                     help="comma-separated symbols to run (default: every listed market)")
    sub.add_argument("--speed", type=float, default=1.0,
                     help="simulated seconds per real second (720: 8 h of funding in 40 s)")
    sub.add_argument("--start", default="",
                     help="simulated start time, ISO-8601 UTC (a new data dir; default: now)")
    sub.add_argument("--replay", type=Path, default=None,
                     help="CSV of timestamp,symbol,price to replay instead of simulating")
    sub.add_argument("--no-bots", action="store_true", help="feeds only: no market makers")
    sub.add_argument("--no-rate-limits", action="store_true", help="disable rate limits")
    sub.add_argument("--status-interval", type=float, default=10.0,
                     help="seconds between status lines on stderr")
    sub.add_argument("--operator-key", default="",
                     help="x-operator-key for /api/v1/admin/* (default: random, printed)")
    sub.add_argument("--log-level", default="warning", help="debug, info, warning, error")


def _run_demo(args: argparse.Namespace) -> int:
    from perpetua.demo import DemoOptions, run_demo
    from perpetua.marketdata.wire import parse_iso_ns

    start_ns = parse_iso_ns(args.start) if args.start else None
    if args.start and start_ns is None:
        print(f"perpetua demo: --start {args.start!r} is not an ISO-8601 time", file=sys.stderr)
        return EXIT_FAILED
    if not 0 < args.speed <= 1_000_000:
        print("perpetua demo: --speed must be in (0, 1000000]", file=sys.stderr)
        return EXIT_FAILED
    markets = tuple(m.strip() for m in args.markets.split(",") if m.strip())
    try:
        return run_demo(DemoOptions(
            data_dir=args.data_dir, host=args.host, port=args.port, seed=args.seed,
            markets=markets, speed=args.speed, start_ns=start_ns, replay=args.replay,
            rate_limits=not args.no_rate_limits, bots=not args.no_bots,
            status_interval_s=args.status_interval, log_level=args.log_level,
            operator_key=args.operator_key,
        ))  # fmt: skip
    except ValueError as error:  # bad --markets or --replay file
        print(f"perpetua demo: {error}", file=sys.stderr)
        return EXIT_FAILED


def _run_server(args: argparse.Namespace) -> int:
    from perpetua.gateway.serve import RunOptions, run

    return run(RunOptions(data_dir=args.data_dir, host=args.host, port=args.port,
                          operator_key=args.operator_key, rate_limits=not args.no_rate_limits,
                          store=not args.no_store, log_level=args.log_level))


def _progress(replayed: int, seconds: float) -> None:
    rate = replayed / seconds if seconds > 0 else 0.0
    print(f"replayed {replayed} commands, {rate:,.0f}/s", file=sys.stderr, flush=True)


def _run_data_dir_command(args: argparse.Namespace) -> dict[str, object]:
    from perpetua.sequencer import datadir

    data_dir: Path = args.data_dir
    handlers: dict[str, Callable[[], dict[str, object]]] = {
        "replay": lambda: datadir.replay_data_dir(
            data_dir, from_scratch=args.from_scratch, read_only=args.read_only,
            audit=not args.no_audit, progress=_progress,
        ),  # fmt: skip
        "snapshot": lambda: datadir.snapshot_data_dir(data_dir),
        "verify": lambda: datadir.verify_data_dir(data_dir, progress=_progress),
        "repair-journal": lambda: datadir.repair_data_dir(data_dir),
    }
    return handlers[args.command]()


def _run_admin(args: argparse.Namespace) -> int:
    try:
        report = run_admin(args)
    except AdminError as error:
        print(f"perpetua admin {args.admin_command}: {error}", file=sys.stderr)
        return EXIT_ADMIN_FAILED
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "admin":
        return _run_admin(args)
    if args.command == "run":
        return _run_server(args)
    if args.command == "demo":
        return _run_demo(args)
    if args.command in DATA_DIR_COMMANDS:
        from perpetua.sequencer import (
            CodecError,
            JournalError,
            RecoveryError,
            SnapshotCorruptError,
        )

        if args.command != "repair-journal" and not args.data_dir.is_dir():
            print(f"perpetua {args.command}: no data dir at {args.data_dir}", file=sys.stderr)
            return EXIT_FAILED
        try:
            report = _run_data_dir_command(args)
        except (JournalError, RecoveryError, SnapshotCorruptError, CodecError) as error:
            print(f"perpetua {args.command}: {error}", file=sys.stderr)
            return EXIT_FAILED
        print(json.dumps(report, indent=2, sort_keys=True))
        return EXIT_OK
    _help_text, issue = PLANNED_COMMANDS[args.command]
    print(f"perpetua {args.command}: not built yet: see issue {issue}", file=sys.stderr)
    return EXIT_NOT_BUILT


if __name__ == "__main__":
    sys.exit(main())
