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

Stop: Ctrl-C (SIGINT) or SIGTERM stops the HTTP server, then the bots, the feeds, the sequencer
(final snapshot) and the projector; the last line on stdout is ``demo summary {json}``.
"""

import asyncio
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from perpetua.core.catalogue import default_catalogue
from perpetua.core.instruments import InstrumentKind, InstrumentSpec
from perpetua.demo.clock import DemoClock
from perpetua.demo.provision import DEMO_PASSWORD_HASHER, DemoState
from perpetua.demo.stats import DemoStats
from perpetua.demo.traders import build_traders
from perpetua.feeds import (
    IndexBoard,
    IndexPublisher,
    IndexSimulator,
    IndexSource,
    ReplaySource,
    default_config,
    load_replay,
)
from perpetua.feeds.prices import format_units
from perpetua.gateway.config import GatewayConfig
from perpetua.gateway.ratelimit import RateLimitConfig
from perpetua.gateway.serve import open_exchange
from perpetua.marketdata.wire import iso_ms

__all__ = ["DemoOptions", "demo_markets", "run_demo"]

log = logging.getLogger("perpetua.demo")
STARTUP_TIMEOUT_S = 60.0
FEED_SAVE_INTERVAL_S = 10.0
ANONYMOUS_PER_MINUTE = 300  # BitMEX's is 30


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


def demo_markets(selected: tuple[str, ...]) -> list[InstrumentSpec]:
    """The tradable markets of the default catalogue, in catalogue order, or the ``selected``
    ones (ValueError naming any unknown symbol)."""
    tradable = [s for s in default_catalogue() if s.kind != InstrumentKind.INDEX
                and s.state == "Open"]
    if not selected:
        return tradable
    known = {s.symbol for s in tradable}
    unknown = [s for s in selected if s not in known]
    if unknown:
        raise ValueError(f"unknown markets {', '.join(unknown)};"
                         f" listed: {', '.join(sorted(known))}")
    return [s for s in tradable if s.symbol in selected]


def _accounts(data_dir: Path) -> Any:
    """The accounts service of the data dir, with light password hashing for demo users."""
    from perpetua.services.accounts import AccountsService
    from perpetua.services.server_key import load_server_key
    from perpetua.store import default_url, migrate, open_engine

    url = os.environ.get("PERPETUA_DATABASE_URL") or default_url(data_dir)
    migrate(url)
    return AccountsService(open_engine(url), load_server_key(data_dir),
                           password_hasher=DEMO_PASSWORD_HASHER)


def _sources(options: DemoOptions, markets: list[InstrumentSpec], start_ns: int,
             state: DemoState) -> tuple[list[IndexSource], IndexSimulator | None]:
    wanted = {s.reference_symbol for s in markets if s.reference_symbol}
    sources: list[IndexSource] = []
    replayed: set[str] = set()
    if options.replay is not None:
        replay = ReplaySource(load_replay(options.replay))
        replay.skip_to(start_ns)
        replayed = set(replay.symbols()) & wanted
        sources.append(replay)
    config = default_config().only(wanted - replayed)
    if not config.indices:
        return sources, None
    _saved_ns, prices = state.feed()
    simulator = IndexSimulator(config, options.seed, start_ns, prices)
    sources.append(simulator)
    return sources, simulator


def _start_ns(options: DemoOptions, recovered_ns: int) -> int:
    if options.start_ns is not None:
        requested = options.start_ns
    elif options.replay is not None and recovered_ns == 0:
        rows = load_replay(options.replay)
        requested = rows[0].ts_ns if rows else time.time_ns()
    else:
        requested = time.time_ns()
    return max(requested, recovered_ns)


def _banner(options: DemoOptions, you: Any, operator_key: str, start_ns: int,
            markets: list[InstrumentSpec], outbox: Any = None) -> str:
    base = f"http://{options.host}:{options.port}"
    mail = f"  mail        {outbox.path} (sign-up, reset and notice mails, one file each)" \
        if outbox is not None else "  mail        sent to PERPETUA_SMTP_URL"
    return "\n".join([
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
        f"  markets     {', '.join(s.symbol for s in markets)}",
        f"  time        {iso_ms(start_ns)} x{options.speed:g}, seed {options.seed},"
        f" data dir {options.data_dir}",
        "Ctrl-C stops; run the same command again to resume.",
        "",
    ])


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
        from perpetua.sequencer import summarize

        self.options = options
        self.markets = demo_markets(options.markets)
        options.data_dir.mkdir(parents=True, exist_ok=True)
        self.state = DemoState.load(options.data_dir)
        self.operator_key = (options.operator_key or os.environ.get("PERPETUA_OPERATOR_KEY")
                             or secrets.token_urlsafe(24))
        self.clock = DemoClock(options.speed)
        self.accounts = _accounts(options.data_dir)
        from perpetua.services.identity import attach_identity

        # sign-up and sign-in for people (their passwords get the full argon2 parameters);
        # mail goes to the embedded outbox unless PERPETUA_SMTP_URL names a relay
        self.outbox = attach_identity(self.accounts, options.data_dir,
                                      f"http://{options.host}:{options.port}")
        config = GatewayConfig(
            public_host=f"{options.host}:{options.port}", operator_key=self.operator_key,
            # BitMEX's limits per account; per IP a local demo's would throttle everyone at
            # once (every client here is 127.0.0.1), so anonymous requests get more
            rate_limits=RateLimitConfig(enabled=options.rate_limits,
                                        anonymous_per_minute=ANONYMOUS_PER_MINUTE),
        )
        # recovered, the projector caught up, the gateway's views seeded: as `perpetua run`
        self.exchange = open_exchange(options.data_dir, config, self.accounts, clock=self.clock)
        self.sequencer: Any = self.exchange.sequencer
        recovered = self.sequencer.recovery.last_seq if self.sequencer.recovery else 0
        recovered_ns = summarize(self.sequencer.engine).ts_ns if recovered else 0
        self.start_ns = _start_ns(options, recovered_ns)
        self.clock.begin_at(self.start_ns)
        self.stats = DemoStats()
        self.sequencer.subscribe(self.stats.on_command)
        sources, self.simulator = _sources(options, self.markets, self.start_ns, self.state)
        self.board = IndexBoard({".BXBT": ".BXBT30M", ".BETH": ".BETH30M"})
        self.publisher = IndexPublisher(sources, self.sequencer, self.clock, self.board)
        # the compositeIndex seam (routes/instrument.py): constituents from the feeds' board
        setattr(self.exchange.app.state.gateway, "composite_index", self.board)  # noqa: B010
        self.stopping = threading.Event()
        self.failure: BaseException | None = None
        self.traders: Any = None
        self._quiesced = threading.Event()

    def start_traders(self, server: uvicorn.Server) -> None:
        """On its own thread once the server listens: feeds, accounts, banner, clock, bots."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if self.stopping.is_set() or server.should_exit or time.monotonic() > deadline:
                return
            time.sleep(0.05)
        self.publisher.start()  # the first values go out now, at the held start time
        try:
            self.traders = build_traders(self.options, self.markets, self.state, self.accounts,
                                         self.sequencer)
        except Exception as error:
            self.failure = error
            log.exception("demo set-up failed; stopping")
            server.should_exit = True
            return
        sys.stdout.write(_banner(self.options, self.traders.you, self.operator_key,
                                 self.start_ns, self.markets, self.outbox))
        sys.stdout.flush()
        self.clock.release()
        if self.options.bots and not self.stopping.is_set():
            self.traders.runner.start()
        self._status_loop()

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
            f" {snap['liquidations']} .BXBT {price}\n")

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
        self.publisher.stop()
        self.save_feed()
        self._quiesced.set()

    def stop(self) -> dict[str, Any]:
        """After the server: the sequencer (final snapshot), the projector, the summary."""
        self.quiesce()
        self.exchange.stop()
        if self.outbox is not None:
            self.outbox.stop()
        summary = self.stats.snapshot()
        summary["sim_time"] = iso_ms(summary["ts_ns"]) if summary["ts_ns"] else None
        summary["deposits"] = self.state.deposits
        summary["durable_seq"] = self.sequencer.stats().durable_seq
        if self.traders is not None:
            summary["gambler_liquidations"] = self.traders.liquidations()
        return summary


def run_demo(options: DemoOptions) -> int:
    logging.basicConfig(level=options.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    demo = _Demo(options)
    demo.exchange.start()
    config = uvicorn.Config(
        demo.exchange.app, host=options.host, port=options.port, loop="uvloop", http="httptools",
        ws="websockets", log_level=options.log_level, access_log=False,
        timeout_keep_alive=90, lifespan="on",
    )
    server = _DemoServer(config, demo)
    starter = threading.Thread(target=demo.start_traders, args=(server,), daemon=True,
                               name="perpetua-demo-start")
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
