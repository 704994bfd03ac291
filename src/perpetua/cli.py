"""Command line: `perpetua run | demo | admin | operator | replay | snapshot | verify |
repair-journal | verify-liabilities | verify-reserves`.

    run             serve a venue built by ``perpetua.runtime`` from ``--config`` (TOML) and
                    options; exits 1 naming the key when the configuration is wrong
    demo            the same venue with simulated index feeds and trading bots
                    (``perpetua.demo``); exits 1 on bad options before touching the data dir
    admin           users and API keys in a data dir's accounts database
    operator        the operator's commands against a running venue (its /admin routes)
    verify-liabilities  check that an account is included in a published proof of
                    liabilities (exit 1: the file is damaged, naming its first bad line)
    verify-reserves check a published proof of reserves against an Ethereum node

Over a data dir holding ``journal/`` and ``snapshots/``:
    replay          rebuild state; print seq, state_hash, conservation totals and replay rate
    snapshot        offline: recover, then write and verify a snapshot at the recovered seq
    verify          restore every snapshot and check it against a replay of the journal
    repair-journal  move journal damage into journal/quarantine/ (never deletes)
They print one JSON document on stdout, progress on stderr, and exit 1 with the reason on
stderr when the data dir cannot be read (corruption names file and offset).
"""

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from perpetua import __version__, corebuild
from perpetua.runtime.operator_client import OperatorError, add_operator_parser, run_operator
from perpetua.services.admin_cli import AdminError, add_admin_parser, run_admin
from perpetua.services.porl.verify_cli import add_verify_parsers, run_verify

if TYPE_CHECKING:
    from perpetua.runtime import VenueConfig

__all__ = ["build_parser", "main", "run_config"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ADMIN_FAILED = 1
ADMIN_HELP = "users and API keys: create-user, create-key, list-keys, disable-key, list-users"
RUN_HELP = "serve the exchange: REST and WebSocket API, sequencer, core and index feeds"
DEMO_HELP = "a live demo market: simulated index feeds and trading bots"
OPERATOR_HELP = (
    "operate a running venue: instruments, halt, resume, interest-rate, fee-tier,"
    " list-future, accounts, porl-snapshot, porl-message, porl-signature"
)

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
    _add_run_arguments(subparsers.add_parser("run", help=RUN_HELP, description=RUN_HELP))
    _add_demo_arguments(subparsers.add_parser("demo", help=DEMO_HELP, description=DEMO_HELP))
    add_admin_parser(subparsers, ADMIN_HELP)
    add_operator_parser(subparsers, OPERATOR_HELP)
    add_verify_parsers(subparsers)
    for name, help_text in DATA_DIR_COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--data-dir", type=Path, required=True, help="the exchange's data dir")
        if name == "replay":
            sub.add_argument(
                "--from-scratch",
                action="store_true",
                help="ignore snapshots; replay the whole journal",
            )
            sub.add_argument(
                "--read-only",
                action="store_true",
                help="take no lock, change nothing (for a live data dir)",
            )
            sub.add_argument(
                "--no-audit", action="store_true", help="skip the full state audit after replay"
            )
    return parser


def _add_run_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--cluster",
        type=Path,
        default=None,
        help="run one process of a cluster (role sequencer, gateway or projector) from this"
        " TOML file (docs/cluster.md); the other options do not apply",
    )
    sub.add_argument(
        "--config",
        type=Path,
        default=None,
        help="a TOML file (docs/operations.md); options below override it",
    )
    sub.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the exchange's data dir (default: the config's, else ./data)",
    )
    sub.add_argument("--host", default=None, help="address to listen on")
    sub.add_argument("--port", type=int, default=None, help="port to listen on")
    sub.add_argument(
        "--forwarded-allow-ips",
        default=None,
        help="comma-separated proxy addresses whose X-Forwarded-For is trusted (default: none)",
    )
    sub.add_argument(
        "--operator-key",
        default="",
        help="x-operator-key for /api/v1/admin/* (default: $PERPETUA_OPERATOR_KEY"
        " or a random key printed at start)",
    )
    sub.add_argument(
        "--no-rate-limits",
        action="store_true",
        help="disable REST and WebSocket rate limits (benchmarks, local bots)",
    )
    sub.add_argument("--no-store", action="store_true", help="do not run the read-model projector")
    sub.add_argument(
        "--no-feeds",
        action="store_true",
        help="publish no index prices (marks hold; default: the config's feeds)",
    )
    sub.add_argument("--log-level", default=None, help="debug, info, warning, error")
    sub.add_argument("--log-format", default=None, help="json (default) or text")


def _add_demo_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--data-dir",
        type=Path,
        default=Path("data"),
        help="where the demo keeps everything (default: ./data); reused on restart",
    )
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sub.add_argument("--port", type=int, default=8000, help="port to listen on")
    sub.add_argument("--seed", type=int, default=1, help="seed of the index paths and the bots")
    sub.add_argument(
        "--markets",
        default="",
        help="comma-separated symbols to run (default: every listed market)",
    )
    sub.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per real second (720: 8 h of funding in 40 s)",
    )
    sub.add_argument(
        "--start",
        default="",
        help="simulated start time, ISO-8601 UTC (a new data dir; default: now)",
    )
    sub.add_argument(
        "--replay",
        type=Path,
        default=None,
        help="CSV of timestamp,symbol,price to replay instead of simulating",
    )
    sub.add_argument("--no-bots", action="store_true", help="feeds only: no market makers")
    sub.add_argument(
        "--no-chain",
        action="store_true",
        help="no local anvil chain: deposits and withdrawals off (default: on when installed)",
    )
    sub.add_argument("--no-rate-limits", action="store_true", help="disable rate limits")
    sub.add_argument(
        "--status-interval", type=float, default=10.0, help="seconds between status lines on stderr"
    )
    sub.add_argument(
        "--operator-key",
        default="",
        help="x-operator-key for /api/v1/admin/* (default: random, printed)",
    )
    sub.add_argument("--log-level", default="warning", help="debug, info, warning, error")
    sub.add_argument(
        "--forwarded-allow-ips",
        default="",
        help="comma-separated proxy addresses whose X-Forwarded-For is trusted (default: none)",
    )


def _run_demo(args: argparse.Namespace) -> int:
    from perpetua.demo import DemoOptions, run_demo
    from perpetua.wire.values import parse_iso_ns

    start_ns = parse_iso_ns(args.start) if args.start else None
    if args.start and start_ns is None:
        print(f"perpetua demo: --start {args.start!r} is not an ISO-8601 time", file=sys.stderr)
        return EXIT_FAILED
    if not 0 < args.speed <= 1_000_000:
        print("perpetua demo: --speed must be in (0, 1000000]", file=sys.stderr)
        return EXIT_FAILED
    markets = tuple(m.strip() for m in args.markets.split(",") if m.strip())
    print(f"perpetua demo: {corebuild.describe()}", file=sys.stderr)
    try:
        return run_demo(DemoOptions(
            data_dir=args.data_dir, host=args.host, port=args.port, seed=args.seed,
            markets=markets, speed=args.speed, start_ns=start_ns, replay=args.replay,
            rate_limits=not args.no_rate_limits, bots=not args.no_bots, chain=not args.no_chain,
            status_interval_s=args.status_interval, log_level=args.log_level,
            operator_key=args.operator_key,
            forwarded_allow_ips=tuple(a.strip() for a in args.forwarded_allow_ips.split(",")
                                      if a.strip()),
        ))  # fmt: skip
    except ValueError as error:  # bad --markets or --replay file
        print(f"perpetua demo: {error}", file=sys.stderr)
        return EXIT_FAILED


def run_config(args: argparse.Namespace) -> "VenueConfig":
    """The venue's configuration: the file, then the options over it."""
    from dataclasses import replace

    from perpetua.runtime import FeedsConfig, VenueConfig, load_config

    config = load_config(args.config) if args.config is not None else VenueConfig()
    server: dict[str, object] = {}
    if args.host is not None:
        server["host"] = args.host
    if args.port is not None:
        server["port"] = args.port
    if args.forwarded_allow_ips is not None:
        server["forwarded_allow_ips"] = tuple(
            a.strip() for a in args.forwarded_allow_ips.split(",") if a.strip()
        )
    if args.log_level is not None:
        server["log_level"] = args.log_level
    if args.log_format is not None:
        server["log_format"] = args.log_format
    config = config.with_server(**server)
    if args.data_dir is not None:
        config = replace(config, data_dir=args.data_dir)
    if args.operator_key:
        config = replace(config, operator_key=args.operator_key)
    if args.no_rate_limits:
        config = replace(config, rate_limits_enabled=False)
    if args.no_store:
        config = replace(config, store=False)
    if args.no_feeds:
        config = replace(config, feeds=FeedsConfig(default="none"))
    return config


def _run_server(args: argparse.Namespace) -> int:
    from perpetua.runtime import ConfigError, run

    print(f"perpetua run: {corebuild.describe()}", file=sys.stderr)
    if args.cluster is not None:
        from perpetua.runtime.cluster import run_cluster
        from perpetua.runtime.cluster_config import load_cluster_config

        try:
            return run_cluster(load_cluster_config(args.cluster))
        except ConfigError as error:
            print(f"perpetua run: {error}", file=sys.stderr)
            return EXIT_FAILED
    try:
        return run(run_config(args))
    except ConfigError as error:
        print(f"perpetua run: {error}", file=sys.stderr)
        return EXIT_FAILED


def _progress(replayed: int, seconds: float) -> None:
    rate = replayed / seconds if seconds > 0 else 0.0
    print(f"replayed {replayed} commands, {rate:,.0f}/s", file=sys.stderr, flush=True)


def _run_data_dir_command(args: argparse.Namespace) -> dict[str, object]:
    from perpetua.sequencer import datadir

    data_dir: Path = args.data_dir
    handlers: dict[str, Callable[[], dict[str, object]]] = {
        "replay": lambda: datadir.replay_data_dir(
            data_dir,
            from_scratch=args.from_scratch,
            read_only=args.read_only,
            audit=not args.no_audit,
            progress=_progress,
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


def _run_operator(args: argparse.Namespace) -> int:
    try:
        answer = run_operator(args)
    except OperatorError as error:
        print(f"perpetua operator {args.operator_command}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(answer, indent=2, sort_keys=True))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "admin":
        return _run_admin(args)
    if args.command == "operator":
        return _run_operator(args)
    if args.command == "run":
        return _run_server(args)
    if args.command == "demo":
        return _run_demo(args)
    if args.command in ("verify-liabilities", "verify-reserves"):
        outcome = run_verify(args)
        for line in outcome.out:
            print(line)
        for line in outcome.err:
            print(line, file=sys.stderr)
        return outcome.code
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
    raise AssertionError(f"unhandled command {args.command}")  # argparse allows no other


if __name__ == "__main__":
    sys.exit(main())
