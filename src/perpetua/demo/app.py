"""``perpetua demo``: the exchange with embedded defaults, simulated index feeds and bots.

One process, as ``perpetua run`` (sequencer + read-model projector + gateway under uvicorn),
plus:

- a ``DemoClock`` (``--speed``: simulated seconds per real second; ``--start``: where simulated
  time begins on a new data dir) held still until the bots are funded, so no simulated time is
  lost to start-up;
- the index feeds: the seeded simulator (``--seed``) for every index the chosen markets
  reference, or a CSV replay (``--replay``) for the indices it holds, submitting ``IndexPrice``
  every 5 s of simulated time through the sequencer; their board answers
  ``instrument/compositeIndex``;
- the bots (``bots``): one market maker per market, four takers and four over-leveraged
  gamblers, each with its own API key made through ``POST /api/v1/admin/apiKey`` and funded
  through ``POST /api/v1/admin/faucet``, trading over HTTP on 127.0.0.1 like any client;
- a funded API key for you, printed with the URLs at start.

Restart: everything lives in the data dir (journal and snapshots, the SQLite read models and
accounts, and ``demo.json`` with the bots' keys, the faucet totals and the feed's last prices).
Run the same command again and the exchange resumes at its last durable command, simulated time
continues from there (or from now, if the wall clock is later), and the bots reuse their keys.

Stop: Ctrl-C (SIGINT) or SIGTERM stops the bots and the feeds, then the HTTP server (with it the
background jobs, the wallet jobs among them), the sequencer (final snapshot), the projector,
the local chain and the hash workers (``Venue.stop``); the last line on stdout is
``demo summary {json}`` and the exit status 0. The chain and the hash workers run in process
groups of their own (``chain.anvil``, ``services.hash_pool``): the Ctrl-C a terminal sends its
whole foreground process group reaches only this process, which stops them in this order.
"""

import asyncio
import json
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from perpetua.chain.anvil import DEV_FUNDER_ADDRESS, anvil_available
from perpetua.core.catalogue import default_catalogue
from perpetua.core.instruments import InstrumentKind, InstrumentSpec
from perpetua.demo.clock import DemoClock
from perpetua.demo.provision import DEMO_PASSWORD_HASHER, DemoState
from perpetua.demo.stats import DemoStats
from perpetua.demo.traders import build_traders
from perpetua.feeds import load_replay
from perpetua.feeds.prices import format_units
from perpetua.runtime import (
    FeedsConfig,
    IndexSourceConfig,
    ServerConfig,
    VenueConfig,
    configure_logging,
    open_venue,
    operator_key,
    referenced_indices,
    server_config,
    with_metrics,
)
from perpetua.runtime.config import WalletsConfig
from perpetua.runtime.venue import tradable
from perpetua.services.jobs import PeriodicJob
from perpetua.wire.values import iso_ms

__all__ = ["DemoOptions", "demo_markets", "run_demo"]

log = logging.getLogger("perpetua.demo")
STARTUP_TIMEOUT_S = 60.0
FEED_SAVE_INTERVAL_S = 10.0
ANONYMOUS_PER_MINUTE = 300  # BitMEX's is 30
CATALOGUE_WAIT_S = 30.0  # for the catalogue job's first run, before the makers are built


@dataclass(frozen=True, slots=True)
class DemoOptions:
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8000
    seed: int = 1
    markets: tuple[str, ...] = ()  # empty: every listed market
    speed: float = 1.0
    start_ns: int | None = None  # None: now (a new data dir) or where it stopped (a resumed one)
    replay: Path | None = None
    rate_limits: bool = True
    bots: bool = True
    status_interval_s: float = 10.0
    log_level: str = "warning"
    operator_key: str = field(default="", repr=False)
    forwarded_allow_ips: tuple[str, ...] = ()  # proxies whose X-Forwarded-For is trusted
    chain: bool = True  # a local anvil for deposits and withdrawals (docs/wallets.md)


def demo_markets(selected: tuple[str, ...]) -> list[InstrumentSpec]:
    """The tradable markets of the default catalogue, in catalogue order, or the ``selected``
    ones (ValueError naming any unknown symbol)."""
    markets = tradable(default_catalogue())
    if not selected:
        return markets
    known = {s.symbol for s in markets}
    unknown = [s for s in selected if s not in known]
    if unknown:
        raise ValueError(
            f"unknown markets {', '.join(unknown)}; listed: {', '.join(sorted(known))}"
        )
    return [s for s in markets if s.symbol in selected]


def _feeds(options: DemoOptions, markets: list[InstrumentSpec]) -> FeedsConfig:
    """Every index the markets reference is simulated, except those ``--replay`` holds."""
    replayed: dict[str, IndexSourceConfig] = {}
    if options.replay is not None:
        wanted = referenced_indices(markets)
        held = {row.symbol for row in load_replay(options.replay)} & wanted
        replayed = {
            symbol: IndexSourceConfig("replay", path=options.replay) for symbol in sorted(held)
        }
    return FeedsConfig(seed=options.seed, default="simulated", indices=replayed)


def _start_ns(options: DemoOptions, recovered_ns: int) -> int:
    if options.start_ns is not None:
        requested = options.start_ns
    elif options.replay is not None and recovered_ns == 0:
        rows = load_replay(options.replay)
        requested = rows[0].ts_ns if rows else time.time_ns()
    else:
        requested = time.time_ns()
    return max(requested, recovered_ns)


def _banner(
    options: DemoOptions,
    you: Any,
    operator_key: str,
    start_ns: int,
    markets: list[InstrumentSpec],
    outbox: Any = None,
    chain_url: str = "",
) -> str:
    base = f"http://{options.host}:{options.port}"
    chain = (
        [
            f"  chain       {chain_url} (the local anvil: send test ETH to a deposit address"
            f" from its dev account {DEV_FUNDER_ADDRESS})"
        ]
        if chain_url
        else []
    )
    mail = (
        f"  mail        {outbox.path} (sign-up, reset and notice mails, one file each)"
        if outbox is not None
        else "  mail        sent to PERPETUA_SMTP_URL"
    )
    return "\n".join(
        [
            "Perpetua demo exchange is running",
            f"  Terminal    {base}/",
            f"  REST        {base}/api/v1",
            f"  WebSocket   ws://{options.host}:{options.port}/realtime",
            f"  Explorer    {base}/api/explorer",
            f"  API key     {you.key_id}",
            f"  API secret  {you.secret}",
            f"  (user {you.user_id}: 10 XBT, 100000 USDT, 100 ETH, 100000 BMEX from the faucet)",
            f"  operator    x-operator-key: {operator_key}",
            f"  sign up     POST {base}/api/v1/user/register (email, password)",
            mail,
            *chain,
            f"  markets     {', '.join(s.symbol for s in markets)}",
            f"  time        {iso_ms(start_ns)} x{options.speed:g}, seed {options.seed},"
            f" data dir {options.data_dir}",
            "Ctrl-C stops; run the same command again to resume.",
            "",
        ]
    )


class _DemoServer(uvicorn.Server):
    """uvicorn, but the first Ctrl-C or SIGTERM first stops the bots and the feeds (on a
    thread: they finish their requests against the still-running server), then the server."""

    def __init__(self, config: uvicorn.Config, demo: "_Demo") -> None:
        super().__init__(config)
        self.demo = demo
        self._quiescing = False

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self._quiescing or self.should_exit:
            super().handle_exit(sig, frame)  # a second signal: stop now (force on SIGINT)
            return
        self._quiescing = True

        def quiesce() -> None:
            self.demo.quiesce()
            self.should_exit = True

        threading.Thread(target=quiesce, name="perpetua-demo-quiesce", daemon=True).start()


class _Demo:
    """The running pieces and their start/stop order (see the module docstring)."""

    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.markets = demo_markets(options.markets)
        options.data_dir.mkdir(parents=True, exist_ok=True)
        self.state = DemoState.load(options.data_dir)
        self.clock = DemoClock(options.speed)
        self.config = VenueConfig(
            data_dir=options.data_dir,
            operator_key=operator_key(VenueConfig(operator_key=options.operator_key)),
            server=ServerConfig(
                host=options.host,
                port=options.port,
                log_level=options.log_level,
                log_format="text",
                forwarded_allow_ips=options.forwarded_allow_ips,
            ),
            rate_limits_enabled=options.rate_limits,
            # BitMEX's limits per account; per IP a local demo's would throttle everyone at
            # once (every client here is 127.0.0.1), so anonymous requests get more
            anonymous_per_minute=ANONYMOUS_PER_MINUTE,
            feeds=_feeds(options, self.markets),
            wallets=WalletsConfig(chain="local" if options.chain and anvil_available() else "none"),
        )
        self.operator_key = self.config.operator_key
        # recovered, the projector caught up, the gateway's views seeded: as `perpetua run`
        self.venue = open_venue(
            self.config,
            clock=self.clock,
            begin=self._begin,
            markets=self.markets,
            saved_prices=self.state.feed()[1],
            password_hasher=DEMO_PASSWORD_HASHER,
        )
        self.app = with_metrics(self.venue)
        self.sequencer: Any = self.venue.sequencer
        self.accounts = self.venue.accounts
        self.outbox = self.venue.outbox
        self.start_ns = self.venue.start_ns
        self.stats = DemoStats()
        self.sequencer.subscribe(self.stats.on_command)
        self.simulator = self.venue.feeds.simulator
        self.board = self.venue.feeds.board
        self.stopping = threading.Event()
        self.failure: BaseException | None = None
        self.traders: Any = None
        self._quiesced = threading.Event()

    def _begin(self, recovered_ns: int) -> int:
        """Where simulated time starts: the clock is held there until the bots are funded."""
        start_ns = _start_ns(self.options, recovered_ns)
        self.clock.begin_at(start_ns)
        return start_ns

    def start_traders(self, server: uvicorn.Server) -> None:
        """On its own thread once the server listens: feeds, accounts, banner, clock, bots."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if self.stopping.is_set() or server.should_exit or time.monotonic() > deadline:
                return
            time.sleep(0.05)
        self.venue.start_feeds()  # the first values go out now, at the held start time
        self.markets = self.markets + self._catalogue_futures()
        try:
            self.traders = build_traders(
                self.options, self.markets, self.state, self.accounts, self.sequencer
            )
        except Exception as error:
            self.failure = error
            log.exception("demo set-up failed; stopping")
            server.should_exit = True
            return
        sys.stdout.write(
            _banner(
                self.options,
                self.traders.you,
                self.operator_key,
                self.start_ns,
                self.markets,
                self.outbox,
                self._chain_url(),
            )
        )
        sys.stdout.flush()
        self.clock.release()
        if self.options.bots and not self.stopping.is_set():
            self.traders.runner.start()
        self._status_loop()

    def _chain_url(self) -> str:
        """The local anvil's JSON-RPC address ("" without a local chain)."""
        chain = self.venue.chain
        return chain.node.url if chain is not None and chain.node is not None else ""

    def _catalogue_futures(self) -> list[InstrumentSpec]:
        """The futures the venue lists from its catalogue file (``runtime.catalogue``: the
        "catalogue" job, whose first run at start is awaited here), to be quoted like the
        built-in quarterlies; none when ``--markets`` chose the markets."""
        if self.options.markets:
            return []
        jobs = [j for j in self.venue.background if isinstance(j, PeriodicJob)]
        deadline = time.monotonic() + CATALOGUE_WAIT_S
        for job in jobs:
            if job.name != "catalogue":
                continue
            while job.status().last_duration_s is None and time.monotonic() < deadline:
                time.sleep(0.05)  # bounded by the deadline
        known = {spec.symbol for spec in self.markets}
        now_ns = self.clock.now_ns()
        listed = list(self.venue.app.state.gateway.market.specs.values())
        return [
            spec
            for spec in listed
            if spec.kind == InstrumentKind.FUTURE
            and spec.symbol not in known
            and spec.expiry_ns > now_ns
        ]

    def _status_loop(self) -> None:
        last_save = time.monotonic()
        while not self.stopping.wait(min(self.options.status_interval_s, FEED_SAVE_INTERVAL_S)):
            if time.monotonic() - last_save >= FEED_SAVE_INTERVAL_S:
                self.save_feed()
                last_save = time.monotonic()
            self._print_status()

    def _print_status(self) -> None:
        snap = self.stats.snapshot()
        index = self.board.reading(".BXBT")
        price = format_units(index.units, index.decimals) if index else "-"
        sys.stderr.write(
            f"[demo] {iso_ms(self.clock.now_ns())} seq {snap['seq']} trades"
            f" {snap['trades_total']} funding {snap['funding_events']} liquidations"
            f" {snap['liquidations']} .BXBT {price}\n"
        )

    def save_feed(self) -> None:
        if self.simulator is not None:
            self.state.save_feed(self.clock.now_ns(), self.simulator.prices())

    def quiesce(self) -> None:
        """Stop everything that submits (bots, feeds) while the server still answers."""
        if self._quiesced.is_set():
            return
        self.stopping.set()
        if self.traders is not None:
            self.traders.runner.stop()
        self.venue.stop_feeds()
        self.save_feed()
        self._quiesced.set()

    def stop(self) -> dict[str, Any]:
        """After the server: the sequencer (final snapshot), the projector, the summary."""
        self.quiesce()
        self.venue.stop()
        summary = self.stats.snapshot()
        summary["sim_time"] = iso_ms(summary["ts_ns"]) if summary["ts_ns"] else None
        summary["deposits"] = self.state.deposits
        summary["durable_seq"] = self.sequencer.stats().durable_seq
        if self.traders is not None:
            summary["gambler_liquidations"] = self.stats.liquidations_of(
                self.traders.gambler_accounts
            )
        return summary


def run_demo(options: DemoOptions) -> int:
    demo = _Demo(options)
    configure_logging(demo.config.server)
    demo.venue.start()
    config = server_config(demo.app, demo.config.server)
    server = _DemoServer(config, demo)
    starter = threading.Thread(
        target=demo.start_traders, args=(server,), daemon=True, name="perpetua-demo-start"
    )
    summary: dict[str, Any] = {}

    async def serve() -> None:
        nonlocal summary
        try:
            await server.serve()
        finally:
            # still on the server's loop: the gateway's subscription posts to an open loop
            # until the sequencer has stopped
            summary = demo.stop()

    for number in (signal.SIGINT, signal.SIGTERM):
        # uvicorn re-raises the signal it handled to the handler in place before it started
        # once it has stopped: this one ignores it, so the process exits 0 after cleaning up.
        signal.signal(number, lambda signum, _frame: None)
    starter.start()
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(serve())
    starter.join(5.0)
    sys.stdout.write("demo summary " + json.dumps(summary, sort_keys=True) + "\n")
    sys.stdout.flush()
    return 1 if demo.failure is not None else 0
