"""The gateway role of a cluster: the ordinary gateway app over a `ClusterCommandPort`.

Order at start (each step needs the one before):
1. The order-id key and server key from ``data_dir`` (copy that directory to every gateway:
   every gateway must show an order under the same orderID and decrypt the same API secrets).
2. The port connects to NATS. The views are seeded at exactly one seq (the private views fold
   cumulative figures: engine and read models must be read at the same seq), one of two ways:
   a. **From a snapshot** (`PinnedReads`): one REPEATABLE READ transaction on the shared read
      models (PostgreSQL) gives the projector's stored offset ``p`` and, later, every row the
      views are seeded from, all as committed at ``p`` (the projector writes its rows and its
      offset in one transaction, one per stream message). The replica restores the newest
      snapshot at or below ``p``, applies the stream up to exactly ``p`` (`open_at`), the
      public seed is read there, and the replica follows the rest of the stream. A start
      then costs the tail after the snapshot, not the whole stream.
   b. **From message 1** (no snapshot at or below ``p``, nothing projected yet, SQLite read
      models): the replica applies the whole stream while the gateway projects it into a
      scratch SQLite file, and both are read at the replica's end.
3. The app is built over the port (it subscribes, and gets every batch after the seed); its
   history routes read the shared read models (PostgreSQL, written by the projector role)
   through `History`, whose progress is the projector's stored offset.
4. Rate limits are shared with the other gateways (`SharedLimits`).
5. uvicorn serves on a socket bound with ``SO_REUSEPORT`` (``server.reuse_port``), so several
   gateway processes on one machine share its port and the kernel spreads connections.

6. ``GET /metrics`` (Prometheus text) answers this process's figures
   (`metrics.ClusterGatewayCollector`).
7. The futures catalogue file's job (``venue.catalogue_job``: define the series, list what is
   due, at start and hourly) runs in every gateway, as in the embedded venue: the lister skips
   what the gateway's replica already has, and a command a second gateway sent at the same
   moment is refused by the core (``INSTRUMENT_EXISTS``), so a series is defined once.

8. Accounts (`services.identity`: sign-up, sign-in, sessions, 2FA, mail) over the shared
   PostgreSQL database, as in the embedded venue: users, sessions, second factors and mail
   tokens are rows there, so a session made on one gateway is valid on every other, and a
   token mailed by one is redeemed on any. Mail goes to ``smtp_url`` (else
   ``PERPETUA_SMTP_URL``, else an embedded outbox in ``data_dir``); each gateway runs the
   mail-retry job, and a queued message is claimed before it is sent (`mail_queue`), so two
   gateways never send it twice.

9. Wallets (``[wallets]`` chain "rpc"; `runtime.wallets.gateway_wallets`): the routes
   (deposit addresses, the address book, withdrawal requests with their 2FA and emailed
   confirmation, cancel, history) over the shared database, submitting through the port
   (``execute``, from the routes' worker threads). No key and no job here: the leading
   sequencer signs and runs the chain watcher, the signer and the sweeps (`cluster_leader`).

10. Compliance (`services.compliance`, ``[compliance]``) over the shared database: the KYC
   routes, operators' review and restrictions, access checks, and the wallets' withdrawal
   policy (`CompliancePolicy`); each gateway re-reads its sanctions list files when they
   change (no rescreen: the leader's job screens and opens cases). The volume tiers' figures
   (``/user/tradingVolume``) from the database (`volume.StoredVolume`); the proofs of
   reserves and liabilities from the database (`porl.shared.ClusterProofs`), a snapshot asked
   here taken by the leader.

11. Bots and copy trading (`cluster_trading.GatewayTrading`): the routes answer reads from
   what the leading sequencer, which runs them, mirrors to every gateway, and send acts to it
   as requests; validation and backtests run here.

Index feeds, the calendars job, the wallets' jobs, the compliance sync, the volume tiers, the
daily proof, bots and copy trading run on the leading sequencer (`cluster_leader`,
`leader_services`, `cluster_trading`).
"""

import asyncio
import logging
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Concatenate, Final, ParamSpec, TypeVar

import uvicorn
from prometheus_client import CollectorRegistry
from sqlalchemy import Connection, Engine, select

from perpetua.gateway import GatewayConfig, create_app
from perpetua.gateway.history import History
from perpetua.gateway.ports import CostPorts
from perpetua.gateway.ratelimit import RateLimitConfig
from perpetua.gateway.server import uvicorn_config
from perpetua.marketdata.ids import use_order_id_key
from perpetua.runtime.catalogue import default_catalogue_path, load_catalogue
from perpetua.runtime.cluster_config import ClusterConfig
from perpetua.runtime.cluster_trading import GatewayTrading
from perpetua.runtime.metrics import ClusterGatewayCollector, CommandCounts
from perpetua.runtime.server import MetricsApp
from perpetua.runtime.venue import (
    catalogue_job,
    order_id_key,
    private_directory,
    reserves_of,
    tune_interpreter,
)
from perpetua.runtime.wallets import gateway_wallets
from perpetua.sequencer import Applied
from perpetua.sequencer.seed import engine_seed
from perpetua.services.accounts import AccountsService
from perpetua.services.compliance import Compliance, CompliancePolicy
from perpetua.services.convert import ConvertDesk
from perpetua.services.identity import open_identity
from perpetua.services.jobs import BackgroundService, PeriodicJob
from perpetua.services.mail_queue import MAIL_RETRY_INTERVAL_S
from perpetua.services.onramp import BankTransfer, OnRamp, SqlBankOrders
from perpetua.services.porl.shared import ClusterProofs, SnapshotRequests
from perpetua.services.server_key import load_server_key
from perpetua.services.volume import FIGURES_REFRESH_S, SqlFigures, SqlOwners, StoredVolume
from perpetua.store import Projector, default_url, migrate, migrate_once, open_engine, queries
from perpetua.store.schema import projector_state
from perpetua.transport.gateway_port import ClusterCommandPort, SharedLimits
from perpetua.transport.stream import ClusterNames

__all__ = ["StoredProgress", "gateway_socket", "run_gateway"]

log = logging.getLogger("perpetua.cluster.gateway")
P = ParamSpec("P")
T = TypeVar("T")
PROGRESS_CACHE_S: Final = 0.02


class StoredProgress:
    """The projector's stored offset (``projector_state.last_seq``), read at most every
    ``PROGRESS_CACHE_S``: what the history routes wait for."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._value = 0
        self._read_at = 0.0

    def __call__(self) -> int:
        now = time.monotonic()
        if now - self._read_at >= PROGRESS_CACHE_S:
            self._read_at = now
            with self._engine.connect() as conn:
                value = conn.execute(select(projector_state.c.last_seq)).scalar()
            self._value = int(value) if value is not None and value > 0 else 0
        return self._value


def gateway_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class PinnedReads:
    """The shared read models as committed at one moment (a REPEATABLE READ transaction on
    PostgreSQL): ``seq`` is the projector's stored offset then, and ``read_now`` (what the
    views' seeding calls, like `History.read_now`) reads the same moment. Close it after."""

    def __init__(self, engine: Engine) -> None:
        self._conn = engine.connect().execution_options(isolation_level="REPEATABLE READ")
        self._transaction = self._conn.begin()
        self.seq = queries.last_projected_seq(self._conn)  # the first read fixes the moment

    def read_now(
        self, query: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return query(self._conn, *args, **kwargs)

    def close(self) -> None:
        self._transaction.rollback()
        self._conn.close()


def _pinned_start(port: ClusterCommandPort, sql: Engine) -> tuple[PinnedReads, Any] | None:
    """Way 2a of the module docstring: the pinned reads and the public seed at their seq, or
    None (way 2b)."""
    if sql.dialect.name != "postgresql":
        return None
    pinned = PinnedReads(sql)
    seed = port.open_at(pinned.seq, engine_seed) if pinned.seq > 0 else None
    if seed is None:
        pinned.close()
        return None
    return pinned, seed


def run_gateway(config: ClusterConfig) -> None:
    # read before anything opens: a bad file stops the start with its series and key named
    catalogue = load_catalogue(config.catalogue or default_catalogue_path())
    data_dir = private_directory(Path(config.data_dir))
    use_order_id_key(order_id_key(data_dir))
    url = config.database_url
    if not url:
        raise ValueError("database_url: a gateway needs the read models' database")
    migrate_once(url)
    scratch = tempfile.TemporaryDirectory(prefix="perpetua-gw-seed-")
    seed_url = default_url(scratch.name)
    migrate(seed_url)
    seed_projector = Projector(open_engine(seed_url))

    def project(batch: Sequence[Applied]) -> None:
        seed_projector.project([(a.seq, a.ts_ns, a.command, a.events) for a in batch])

    port = ClusterCommandPort(
        config.servers, ClusterNames(config.prefix), config.name, startup_sink=project
    )
    sql = open_engine(url)
    pinned_start = _pinned_start(port, sql)
    if pinned_start is None:
        port.open()
    accounts = AccountsService(open_engine(url), load_server_key(data_dir))
    public_url = config.public_url or f"http://{config.server.host}:{config.server.port}"
    identity, outbox, mail_queue = open_identity(
        accounts, data_dir, public_url, smtp_url=config.smtp_url or None
    )
    background: list[BackgroundService] = [
        PeriodicJob("mail-retry", MAIL_RETRY_INTERVAL_S, lambda: asyncio.to_thread(mail_queue.step))
    ]
    progress = StoredProgress(sql)
    compliance = Compliance(accounts.engine, accounts.server_key, port, config.compliance)
    if config.compliance.sanctions_lists:
        background.append(
            PeriodicJob(
                "sanctions-files", config.compliance.sync_interval_s, compliance.reload_list_files
            )
        )
    chain = gateway_wallets(
        config.wallets, open_engine(url), port.execute, identity, CompliancePolicy(compliance)
    )
    volume = StoredVolume(SqlFigures(sql, time.time_ns), SqlOwners(sql))
    volume.load()
    background.append(PeriodicJob("volume-figures", FIGURES_REFRESH_S, volume.refresh))
    proofs = ClusterProofs(
        SnapshotRequests(sql), data_dir, accounts.server_key, venue=config.porl.venue,
        reserves=reserves_of(config.porl, chain, sign=False),
    )  # fmt: skip
    trading = GatewayTrading(port, ClusterNames(config.prefix), sql)
    try:
        seed = port.seed(engine_seed) if pinned_start is None else pinned_start[1]
        app = create_app(
            GatewayConfig(
                public_host=f"{config.server.host}:{config.server.port}",
                operator_key=config.operator_key,
                rate_limits=RateLimitConfig(enabled=config.rate_limits),
            ),
            port,
            History(sql, progress),
            accounts,
            identity=identity,
            background=background,
            proofs=proofs,
            costs=CostPorts(
                volume=volume,
                # quotes sealed with the gateways' shared key: executable on any gateway
                convert=ConvertDesk(
                    {spec.symbol: spec for spec in seed.instruments},
                    time.time_ns,
                    sealer=accounts.server_key,
                ),
                # bank orders in the shared database: ordered on one gateway, confirmed on any
                onramp=OnRamp(BankTransfer(SqlBankOrders(sql))),
            ),
            compliance=compliance,
            wallets=None if chain is None else chain.wallets,
            bots=trading.bots,
            copy=trading.copy,
        )
        gateway = app.state.gateway
        trading.attach(gateway)
        background.append(catalogue_job(catalogue, gateway))  # read when the server starts
        shared_history = gateway.history
        if pinned_start is None:
            gateway.history = History.over(seed_projector)  # the scratch read models, at seed.seq
        else:
            gateway.history = pinned_start[0]  # the shared read models, at seed.seq
        gateway.bootstrap(seed)
        gateway.history = shared_history
        if pinned_start is not None:
            pinned_start[0].close()
        seed_projector.engine.dispose()
        scratch.cleanup()
        limits = gateway.limits

        def absorb(key: str, authenticated: bool, cost: int, order_layer: bool) -> None:
            loop = gateway.loop  # the server's loop, where the limiter runs
            if loop is None:
                limits.absorb(key, authenticated, cost, order_layer)
            else:
                loop.call_soon_threadsafe(limits.absorb, key, authenticated, cost, order_layer)

        shared = SharedLimits(port, absorb)
        limits.on_charge = shared.record
        shared.start()
        counts = CommandCounts()  # from the batches after the seed, as the views
        port.subscribe_batches(counts.on_batch)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(
            ClusterGatewayCollector(
                gateway,
                counts,
                lambda: port.replica.applied_seq,
                progress,
                lambda: port.restored_seq,
            )
        )
        served = MetricsApp(app, registry)  # GET /metrics: this process's figures
        sock = gateway_socket(config.server.host, config.server.port, config.server.reuse_port)
        server = uvicorn.Server(
            uvicorn_config(
                served, config.server.host, config.server.port, config.server.log_level,
                log_config=None,
            )
        )  # fmt: skip
        for number in (signal.SIGINT, signal.SIGTERM):
            # uvicorn stops gracefully on the signal, then re-raises it to the handler in place
            # before it started: this one ignores it, so the cleanup below runs (exit 0)
            signal.signal(number, lambda _signum, _frame: None)
        log.warning(
            "gateway %s serving on %s:%d from seq %d (snapshot %d)",
            config.name, config.server.host, config.server.port, seed.seq, port.restored_seq,
        )  # fmt: skip
        tune_interpreter()
        server.run(sockets=[sock])
    finally:
        trading.close()
        port.close()
        if chain is not None:
            chain.close()
            chain.wallets.engine.dispose()
        compliance.close()
        identity.close()
        if outbox is not None:
            outbox.stop()
        accounts.close()
        sql.dispose()
