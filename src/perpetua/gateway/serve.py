"""``perpetua run``: recover the engine, start the sequencer, the read-model projector and the
gateway under uvicorn, and shut down cleanly on SIGINT/SIGTERM.

Order at start: ``Sequencer.open(data_dir)`` (snapshot + journal tail); the recovered engine's
public state is read once (``bootstrap.engine_seed``) while no thread touches it; the store is
migrated and the projector caught up from the journal to the recovered seq, synchronously; the
gateway is built (subscribed, its views seeded from both: docs/decisions.md §7); then the
sequencer threads and the HTTP server start. Order at stop: uvicorn stops accepting and closes
sockets, then the sequencer stops (taking its snapshot) and the projector drains. API keys
come from ``perpetua.services.accounts`` when it is installed, else from an in-memory store
filled through ``POST /api/v1/admin/apiKey``.
"""

import gc
import logging
import os
import secrets
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import uvicorn

from perpetua.gateway.app import create_app
from perpetua.gateway.bootstrap import engine_seed
from perpetua.gateway.config import GatewayConfig
from perpetua.gateway.memory_accounts import MemoryAccounts
from perpetua.gateway.ratelimit import RateLimitConfig

__all__ = ["Exchange", "RunOptions", "open_exchange", "run"]

log = logging.getLogger("perpetua.run")
OPERATOR_KEY_ENV = "PERPETUA_OPERATOR_KEY"


@dataclass(frozen=True, slots=True)
class RunOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    operator_key: str = ""
    rate_limits: bool = True
    store: bool = True
    log_level: str = "info"


def _accounts(data_dir: Path) -> Any:
    try:
        from perpetua.services.accounts import AccountsService
    except ImportError:  # the accounts service is not installed: keys live in memory
        return MemoryAccounts()
    return AccountsService.open(data_dir, os.environ.get("PERPETUA_DATABASE_URL"))


def _projector(data_dir: Path, instruments: Any) -> Any:
    """The read-model projector, caught up to the journal before it follows the live stream
    (its own start-up catch-up then finds nothing to do). ``instruments``: the recovered
    engine's, with the futures it listed at runtime."""
    from perpetua.store import (
        Projector,
        ProjectorThread,
        catch_up,
        default_url,
        migrate,
        open_engine,
    )

    url = os.environ.get("PERPETUA_DATABASE_URL") or default_url(data_dir)
    migrate(url)
    projector = Projector(open_engine(url), instruments)
    catch_up(projector, data_dir)
    return ProjectorThread(projector, data_dir=data_dir)


@dataclass(slots=True)
class Exchange:
    """A recovered exchange, wired and not yet started: ``start`` the sequencer, serve ``app``,
    then ``stop``."""

    sequencer: Any
    projector: Any
    app: Any

    def start(self) -> None:
        self.sequencer.start()

    def stop(self) -> None:
        self.sequencer.stop()
        if self.projector is not None:
            self.projector.close()


def open_exchange(data_dir: Path, config: GatewayConfig, accounts: Any, store: bool = True,
                  clock: Any = None) -> Exchange:
    """Recover ``data_dir`` and build the gateway over it, its views equal to the recovered
    engine (see the module docstring for the order). ``clock``: the sequencer's (default wall
    time; ``perpetua demo`` passes a simulated one)."""
    from perpetua.sequencer.runner import Sequencer

    data_dir.mkdir(parents=True, exist_ok=True)
    sequencer = Sequencer.open(data_dir, clock=clock)
    recovered = sequencer.recovery.last_seq if sequencer.recovery is not None else 0
    seed = engine_seed(sequencer.engine, recovered)  # before start: no thread touches it
    projector = _projector(data_dir, sequencer.engine.instruments) if store else None
    if projector is not None:
        sequencer.subscribe(projector.publish)
    app = create_app(config, cast(Any, sequencer), projector, accounts, seed=seed)
    return Exchange(sequencer, projector, app)


GC_THRESHOLDS = (50_000, 20, 100)  # (young, middle, old); CPython's default is (700, 10, 10)


def _tune_gc() -> None:
    """Move what start-up built (the recovered engine, catalogues, views) out of the cyclic
    collector's reach and collect the young generation less often: each order allocates a few
    hundred short-lived objects, and the default thresholds made collection about a tenth of
    the server's CPU (py-spy; docs/decisions.md §9). Reference counting still frees almost
    everything at once; only cycles wait longer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(options: RunOptions) -> int:
    logging.basicConfig(level=options.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    operator_key = options.operator_key or os.environ.get(OPERATOR_KEY_ENV, "")
    if not operator_key:
        operator_key = secrets.token_urlsafe(24)
        sys.stderr.write(f"operator key (x-operator-key for /api/v1/admin/*): {operator_key}\n")
    config = GatewayConfig(
        public_host=f"{options.host}:{options.port}", operator_key=operator_key,
        rate_limits=RateLimitConfig(enabled=options.rate_limits),
    )
    accounts = _accounts(options.data_dir)
    outbox = None
    if hasattr(accounts, "identity"):  # sign-up, sign-in and mail (services.identity)
        from perpetua.services.identity import attach_identity

        outbox = attach_identity(accounts, options.data_dir,
                                 f"http://{options.host}:{options.port}")
        if outbox is not None:
            sys.stderr.write(f"mail to users goes to the outbox {outbox.path} "
                             "(set PERPETUA_SMTP_URL for a real relay)\n")
    exchange = open_exchange(options.data_dir, config, accounts, options.store)
    _tune_gc()
    exchange.start()
    app = exchange.app
    server = uvicorn.Server(uvicorn.Config(
        app, host=options.host, port=options.port, loop="uvloop", http="httptools",
        ws="websockets", log_level=options.log_level, access_log=False,
        timeout_keep_alive=90, lifespan="on", proxy_headers=False, server_header=False,
    ))
    stops: list[int] = []
    for number in (signal.SIGINT, signal.SIGTERM):
        # uvicorn handles the signal (graceful stop), then re-raises it to the handler that
        # was in place before it started: this one only records it, so the cleanup below
        # runs and the process exits 0 instead of dying by the signal.
        signal.signal(number, lambda signum, _frame: stops.append(signum))
    try:
        server.run()
    finally:
        exchange.stop()
        if outbox is not None:
            outbox.stop()
    log.info("stopped cleanly (signals: %s)", stops)
    return 0
