"""``open_venue(config)``: the one place that builds a whole venue from a ``VenueConfig``.

``perpetua run`` and ``perpetua demo`` both call it; the demo adds bots and a faucet on top and
patches nothing in. Order at open (each step needs the one before):

1. ``Sequencer.open(data_dir)``: the newest snapshot plus the journal tail, audited.
2. The recovered engine's public state is read once (``engine_seed``) while no thread runs.
3. ``begin(recovered_ns)`` fixes where the venue's time starts (the demo begins its held clock
   there); the index feeds are built from that time.
4. The store is migrated and the projector caught up from the journal to the recovered seq,
   synchronously, then subscribed to the live stream (``store = false``: the read models go to
   a temporary file for this run; the gateway always reads them).
5. The accounts service opens on the same database, with its identity part (sign-in, 2FA,
   mail through ``PERPETUA_SMTP_URL`` or the embedded outbox); the gateway is built
   (subscribed before the sequencer starts, so no batch is missed) with its views seeded from
   2 and 4.

``start()`` starts the sequencer's threads; ``start_feeds()`` the index publisher (the demo
calls it once its bots are funded, ``run`` at once). ``stop()`` reverses: feeds, sequencer
(final snapshot), projector, the local chain, the hash workers, accounts. The background
services (the wallet jobs among them) stop before it, with the server (the app's lifespan), so
nothing uses the chain when it stops; a Ctrl-C does not stop the chain or the hash workers
first, as they run in process groups of their own (``chain.anvil``, ``services.hash_pool``).
"""

import asyncio
import gc
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from perpetua.chain.rpc import JsonRpc
from perpetua.core.calendar import TradingHours
from perpetua.core.catalogue import FutureSeries
from perpetua.core.commands import Command, SetTradingCalendar
from perpetua.core.events import Event
from perpetua.core.instruments import InstrumentKind, InstrumentSpec
from perpetua.core.units import PRICE_FINE_PER_TICK
from perpetua.feeds import IndexPublisher
from perpetua.gateway import GatewayConfig, create_app
from perpetua.gateway.app import DirectRoutes
from perpetua.gateway.history import History
from perpetua.gateway.ports import CostPorts
from perpetua.gateway.ratelimit import RateLimitConfig
from perpetua.gateway.surface import GatewaySurface
from perpetua.marketdata.hub import MarketData
from perpetua.marketdata.ids import ORDER_ID_KEY_BYTES, use_order_id_key
from perpetua.runtime.catalogue import (
    CATALOGUE_CHECK_INTERVAL_S,
    CatalogueEntry,
    CatalogueLister,
    default_catalogue_path,
    load_catalogue,
)
from perpetua.runtime.config import PorlConfig, VenueConfig
from perpetua.runtime.indices import IndexFeeds, build_index_feeds
from perpetua.runtime.wallets import NETWORK as WALLET_NETWORK
from perpetua.runtime.wallets import ChainSetup, open_wallets
from perpetua.sequencer import Clock, Sequencer, SystemClock, summarize
from perpetua.sequencer.seed import EngineSeed, engine_seed
from perpetua.services.accounts import AccountsService
from perpetua.services.bots import BotService
from perpetua.services.calendars import CALENDAR_CHECK_INTERVAL_S, CalendarJob
from perpetua.services.compliance import Compliance, CompliancePolicy
from perpetua.services.convert import ConvertDesk
from perpetua.services.copytrading import PROFIT_SHARE_INTERVAL_S, CopyService
from perpetua.services.identity import Identity, open_identity
from perpetua.services.jobs import BackgroundService, PeriodicJob
from perpetua.services.mail import Outbox
from perpetua.services.mail_queue import MAIL_RETRY_INTERVAL_S
from perpetua.services.notifications import Notifications
from perpetua.services.onramp import BankTransfer, OnRamp
from perpetua.services.porl.reserves import (
    EvmReserveChain,
    ReserveAddress,
    StaticReserveAddresses,
)
from perpetua.services.porl.service import ProofService, Reserves, daily_job
from perpetua.services.porl.wallet_reserves import WalletReserves
from perpetua.services.server_key import load_server_key
from perpetua.services.volume import SqlOwners, TierTable, VolumeTiers
from perpetua.services.wallets import Wallets
from perpetua.store import (
    Projector,
    ProjectorThread,
    catch_up,
    default_url,
    migrate,
    open_engine,
    queries,
)

__all__ = [
    "DATABASE_URL_ENV",
    "GC_THRESHOLDS",
    "SWITCH_INTERVAL_S",
    "Venue",
    "catalogue_job",
    "open_venue",
    "reserves_of",
    "tune_interpreter",
]

DATABASE_URL_ENV = "PERPETUA_DATABASE_URL"
GC_THRESHOLDS = (50_000, 20, 100)  # (young, middle, old); CPython's default is (700, 10, 10)
# How long a thread that wants the GIL waits before it asks the running one to drop it;
# CPython's default is 5 ms (docs/decisions.md §30).
SWITCH_INTERVAL_S = 0.001


@dataclass(slots=True)
class Venue:
    """A recovered venue, wired and not yet started."""

    config: VenueConfig
    sequencer: Sequencer
    projector: ProjectorThread
    accounts: AccountsService
    identity: Identity
    outbox: Outbox | None  # the embedded mail outbox, when no SMTP relay is configured
    feeds: IndexFeeds
    publisher: IndexPublisher
    app: DirectRoutes
    background: list[BackgroundService]
    start_ns: int
    recovered_seq: int
    # store = false: the read models live here for this run only (the gateway always reads them)
    scratch: tempfile.TemporaryDirectory[str] | None = None
    # privateNotifications / publicNotifications: the port services tell traders things through
    notifications: Notifications = field(default_factory=Notifications)
    bots: BotService | None = None
    compliance: Compliance | None = None  # KYC, jurisdictions, sanctions (services.compliance)
    # deposits and withdrawals on chain ([wallets]; None: no chain), with the node it started
    chain: ChainSetup | None = None

    @property
    def wallets(self) -> Wallets | None:
        return None if self.chain is None else self.chain.wallets

    copy: CopyService | None = None

    def start(self) -> None:
        self.sequencer.start()

    def start_feeds(self) -> None:
        self.publisher.start()

    def stop_feeds(self) -> None:
        self.publisher.stop()

    def stop(self) -> None:
        self.stop_feeds()
        self.sequencer.stop()
        self.projector.close()
        if self.scratch is not None:
            self.projector.projector.engine.dispose()
            self.scratch.cleanup()
        if self.chain is not None:
            self.chain.close()  # the local anvil, by its pid
        self.identity.close()
        if self.compliance is not None:
            self.compliance.close()
        if self.outbox is not None:
            self.outbox.stop()
        self.accounts.close()


def database_url(config: VenueConfig) -> str:
    return config.database_url or os.environ.get(DATABASE_URL_ENV) or default_url(config.data_dir)


def tradable(instruments: tuple[InstrumentSpec, ...]) -> list[InstrumentSpec]:
    """The instruments one can trade now (no index, listed and open), in catalogue order."""
    return [s for s in instruments if s.kind != InstrumentKind.INDEX and s.state == "Open"]


DATA_FILE_UMASK = 0o077  # what the venue creates: files 0600, directories 0700
DATA_DIR_MODE = 0o700


def private_directory(path: Path) -> Path:
    """``path`` made (or tightened to) ``DATA_DIR_MODE``, with this process's umask set so
    every file the venue creates under it (journal, snapshots, SQLite and its WAL, the server
    key) is readable by its owner only: the journal holds every order and the database every
    user and (encrypted) API secret. A process-wide setting, as it must be for SQLite's own
    files; the venue is the process."""
    os.umask(DATA_FILE_UMASK)
    path.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    path.chmod(DATA_DIR_MODE)
    return path


ORDER_ID_KEY_FILE = Path("secrets") / "order-ids.key"


def order_id_key(data_dir: Path) -> bytes:
    """The venue's order-id key (``marketdata.ids``): made once, on first open, as 32 random
    bytes in hex in ``<data dir>/secrets/order-ids.key`` (0600), then read at every open, so
    every restart and replay of the data dir shows each order under the same orderID. Keep it
    with the data dir (and copy it to every gateway of a cluster)."""
    path = data_dir / ORDER_ID_KEY_FILE
    path.parent.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    if not path.exists():
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(ORDER_ID_KEY_BYTES) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    key = bytes.fromhex(path.read_text().strip())
    if len(key) != ORDER_ID_KEY_BYTES:
        raise ValueError(f"{path}: not a {ORDER_ID_KEY_BYTES}-byte key")
    return key


def _wall_start(recovered_ns: int) -> int:
    return max(time.time_ns(), recovered_ns)


def open_venue(
    config: VenueConfig,
    *,
    clock: Clock | None = None,
    begin: Callable[[int], int] = _wall_start,
    markets: list[InstrumentSpec] | None = None,
    saved_prices: Mapping[str, int] | None = None,
    password_hasher: PasswordHasher | None = None,
    compliance_clock: Callable[[], int] | None = None,
) -> Venue:
    """Recover ``config.data_dir`` and wire the venue over it (order: the module docstring).

    ``clock``: the sequencer's (wall time by default; the demo passes its own). ``begin``: the
    venue's start time from the recovered one. ``markets``: whose indices the feeds publish
    (default every tradable market). ``saved_prices``: the simulator's resume point.
    ``compliance_clock``: the wall time review dates and document expiry are judged by
    (default ``time.time_ns``; a test moves it a year on without moving the market's)."""
    # read before anything opens: a bad file stops the start with its series and key named
    catalogue = load_catalogue(config.catalogue or default_catalogue_path())
    data_dir = private_directory(Path(config.data_dir))
    use_order_id_key(order_id_key(data_dir))
    clock = clock or SystemClock()
    sequencer = Sequencer.open(data_dir, clock=clock)
    recovered = sequencer.recovery.last_seq if sequencer.recovery is not None else 0
    seed = engine_seed(sequencer.engine, recovered)  # before start: no thread touches it
    recovered_ns = summarize(sequencer.engine).ts_ns if recovered else 0
    start_ns = begin(recovered_ns)
    instruments = tuple(sequencer.engine.instruments)
    feeds = build_index_feeds(
        config.feeds, markets or tradable(instruments), start_ns, saved_prices
    )
    url = database_url(config)
    migrate(url)
    scratch = None if config.store else tempfile.TemporaryDirectory(prefix="perpetua-rm-")
    read_models_url = url if scratch is None else default_url(scratch.name)
    if scratch is not None:
        migrate(read_models_url)
    projector = _projector(
        read_models_url, data_dir, instruments, dict(sequencer.engine.state.series)
    )
    sequencer.subscribe(projector.publish)
    accounts = AccountsService(
        open_engine(url), load_server_key(data_dir), password_hasher=password_hasher
    )
    # sign-up, sign-in, sessions and mail (services.identity); mail goes to the embedded
    # outbox unless PERPETUA_SMTP_URL names a relay
    identity, outbox, mail_queue = open_identity(
        accounts,
        data_dir,
        f"http://{config.server.host}:{config.server.port}",
        hash_workers=config.accounts.hash_workers,
        hash_nice=config.accounts.hash_nice,
        hash_idle=config.accounts.hash_idle,
        hash_cpus=config.accounts.hash_cpus,
    )
    # the venue's long-running services (services.jobs): each capability appends its own here
    background: list[BackgroundService] = [
        PeriodicJob(
            "mail-retry", MAIL_RETRY_INTERVAL_S, lambda: asyncio.to_thread(mail_queue.step)
        ),
    ]
    # compliance (below) first: the wallets ask it about every withdrawal (CompliancePolicy:
    # sanctioned addresses, KYC level limits, frozen accounts)
    compliance = Compliance(
        accounts.engine,
        accounts.server_key,
        sequencer,
        config.compliance,
        compliance_clock or time.time_ns,
    )
    # deposits and withdrawals on chain (services.wallets; runtime.wallets): [wallets] chain
    chain = open_wallets(
        config.wallets, data_dir, open_engine(url), sequencer.execute, identity,
        policy=CompliancePolicy(compliance),
    )  # fmt: skip
    if chain is not None:
        background.extend(chain.wallets.jobs(config.wallets.poll_interval_s))
    # proof of reserves and liabilities (services.porl): on demand and daily
    proofs = ProofService(
        data_dir,
        load_server_key(data_dir),
        sequencer,
        venue=config.porl.venue,
        reserves=reserves_of(config.porl, chain),
    )
    if config.porl.daily:
        background.append(daily_job(proofs))
    # what services tell traders (services.notifications): withdrawal status and the like
    notifications = Notifications()
    volume = _volume_tiers(config, sequencer, projector, accounts, seed, clock)
    # holidays and half-days of the TradFi perpetuals (services.calendars), rebuilt daily
    calendars = CalendarJob(
        sequencer.submit_async, clock.now_ns, on_calendar=feed_calendar(feeds, instruments)
    )
    background.append(PeriodicJob("tradfi_calendars", CALENDAR_CHECK_INTERVAL_S, calendars.step))
    background.append(PeriodicJob("volume_tiers", config.fees.volume_check_interval_s, volume.step))
    # users' trading bots (services.bots): folded from the caught-up read models, then from
    # every durable batch (subscribed before the sequencer starts)
    bots = BotService(accounts.engine, instruments, sequencer, identity.keyring)
    bots.seed(projector.projector.engine)
    sequencer.subscribe_batches(bots.on_batch)
    background.append(bots)
    # KYC levels and review, jurisdictions, sanctions (services.compliance): its sync (account
    # restrictions, periodic review) and the sanctions lists' reload run as jobs
    interval = config.compliance.sync_interval_s
    background.append(PeriodicJob("compliance-sync", interval, compliance.sync_all))
    background.append(PeriodicJob("sanctions-reload", interval, compliance.reload_lists))
    # copy trading (services.copytrading): the same stream; profit share settled periodically
    copy = CopyService(accounts.engine, instruments, sequencer, identity.keyring, notifications)
    copy.seed(projector.projector.engine, recovered)
    sequencer.subscribe_batches(copy.on_batch)
    background.append(copy)
    background.append(PeriodicJob("copy-profit-share", PROFIT_SHARE_INTERVAL_S, copy.settle_job))
    gateway_config = GatewayConfig(
        public_host=f"{config.server.host}:{config.server.port}",
        operator_key=config.operator_key,
        rate_limits=RateLimitConfig(
            enabled=config.rate_limits_enabled, anonymous_per_minute=config.anonymous_per_minute
        ),
    )
    app = create_app(
        gateway_config,
        sequencer,
        History.over(projector.projector),
        accounts,
        seed=seed,
        indices=feeds.board,
        identity=identity,
        background=background,
        proofs=proofs,
        notifications=notifications,
        costs=CostPorts(
            volume=volume,
            convert=ConvertDesk(
                {spec.symbol: spec for spec in sequencer.engine.instruments}, clock.now_ns
            ),
            onramp=OnRamp(BankTransfer(data_dir / "onramp" / "bank-orders.jsonl")),
        ),
        bots=bots,
        compliance=compliance,
        wallets=None if chain is None else chain.wallets,
        copy=copy,
    )
    volume.usd_per_xbt = _usd_per_xbt(app.state.gateway.market)
    background.append(catalogue_job(catalogue, app.state.gateway))
    publisher = IndexPublisher(feeds.sources, sequencer, clock, feeds.board)
    return Venue(
        config,
        sequencer,
        projector,
        accounts,
        identity,
        outbox,
        feeds,
        publisher,
        app,
        background,
        start_ns,
        recovered,
        scratch,
        notifications,
        bots=bots,
        compliance=compliance,
        chain=chain,
        copy=copy,
    )


def reserves_of(porl: PorlConfig, wallets: ChainSetup | None, sign: bool = True) -> Reserves | None:
    """What Proof of Reserves sums. ``[porl] rpc_url`` with ``[[porl.reserve]]``: that fixed
    list on that node, every address signed offline (``perpetua operator porl-signature``).
    Else the venue's wallets (``[wallets]``): the hot wallet (signed by its key), every deposit
    address (signed by keys from the deposit seed when the venue holds it: the local chain) and
    the cold address (offline), on the wallets' node. Neither: liabilities only. ``sign``
    False (a cluster gateway: no key): every address is one to sign offline."""
    if porl.rpc_url:
        entries = [ReserveAddress(r.address, r.kind, r.currency) for r in porl.reserves]
        chain = EvmReserveChain(JsonRpc(porl.rpc_url), porl.tokens)
        return Reserves(StaticReserveAddresses(entries), chain, None)
    if wallets is None:
        return None
    book = WalletReserves(
        wallets.wallets.engine, WALLET_NETWORK, wallets.currencies,
        hot_key=wallets.hot_key or None, cold_address=wallets.cold_address or None,
        deposit_mnemonic=wallets.deposit_mnemonic,
    )  # fmt: skip
    tokens = {"USDt": wallets.token} if wallets.token else {}
    return Reserves(book, EvmReserveChain(wallets.rpc, tokens), book if sign else None)


def _volume_tiers(
    config: VenueConfig,
    sequencer: Sequencer,
    projector: ProjectorThread,
    accounts: AccountsService,
    seed: EngineSeed,
    clock: Clock,
) -> VolumeTiers:
    """The volume-tier job's service (services.volume): executions from the read models,
    families from the accounts database, tiers submitted through the sequencer."""
    read_engine = projector.projector.engine

    def read(start_ns: int, end_ns: int) -> list[Any]:
        with read_engine.connect() as conn:
            return queries.traded_totals(conn, start_ns, end_ns)

    service = VolumeTiers(
        {spec.symbol: spec for spec in sequencer.engine.instruments},
        read,
        SqlOwners(accounts.engine),
        sequencer.submit_async,
        clock.now_ns,
        table=TierTable(config.fees.adv_usd_min),
        known_tiers={account: tier for account, (tier, _) in seed.fees.items()},
        caught_up=History.over(projector.projector).caught_up,
    )
    sequencer.subscribe_batches(service.on_batch)
    return service


def feed_calendar(
    feeds: IndexFeeds, instruments: tuple[InstrumentSpec, ...]
) -> Callable[[SetTradingCalendar], None]:
    """Tell the simulated feed a TradFi market's new calendar: its asset stops on holidays."""
    specs = {spec.symbol: spec for spec in instruments}

    def tell(command: SetTradingCalendar) -> None:
        spec = specs.get(command.symbol)
        if feeds.simulator is None or spec is None:
            return
        weekly = spec.trading_hours
        early = tuple(zip(command.early_close_days, command.early_close_minutes, strict=True))
        hours = TradingHours(weekly.name, weekly.sessions, command.holiday_days, early)
        feeds.simulator.set_hours(spec.root_symbol, hours)

    return tell


def _usd_per_xbt(market: MarketData) -> Callable[[], int]:
    """Whole USD per XBT from the XBTUSD mark the gateway shows (0 before the first mark):
    what the volume tiers value XBt-settled quanto volume at."""

    def price() -> int:
        spec = market.specs.get("XBTUSD")
        mark = market.mark_fine("XBTUSD")
        if spec is None or mark is None:
            return 0
        return mark * spec.tick_num // (spec.tick_den * PRICE_FINE_PER_TICK)

    return price


def catalogue_job(entries: list[CatalogueEntry], gateway: GatewaySurface) -> PeriodicJob:
    """The futures catalogue file's series and listings, as commands from a periodic job
    (``runtime.catalogue``): first run at start, then hourly for scheduled listings. Cluster
    gateways run it too (``cluster_gateway``)."""

    async def submit(command: Command) -> list[Event]:
        return list((await gateway.submit_unshed(command)).events)

    lister = CatalogueLister(
        entries,
        known=lambda: gateway.series,
        listed=lambda: gateway.market.specs.keys(),
        submit=submit,
        now=lambda: max(gateway.market.ts_ns, time.time_ns()),
    )
    return PeriodicJob("catalogue", CATALOGUE_CHECK_INTERVAL_S, lister.step)


def _projector(
    url: str,
    data_dir: Path,
    instruments: tuple[InstrumentSpec, ...],
    series: dict[str, FutureSeries],
) -> ProjectorThread:
    """The read-model projector, caught up to the journal before it follows the live stream.
    ``instruments``: the recovered engine's, with the futures it listed at runtime; ``series``:
    the futures series it defined (the catalogue file's)."""
    projector = Projector(open_engine(url), instruments, series)
    catch_up(projector, data_dir)
    return ProjectorThread(projector, data_dir=data_dir)


def tune_interpreter() -> None:
    """Tune the interpreter for a serving process, once its start-up is done.

    1. Move what start-up built (the recovered engine, catalogues, views) out of the cyclic
       collector's reach and collect the young generation less often: each order allocates a
       few hundred short-lived objects, and the default thresholds made collection about a
       tenth of the server's CPU (py-spy; docs/decisions.md §9). Reference counting still
       frees almost everything at once; only cycles wait longer.
    2. Hand the GIL over after ``SWITCH_INTERVAL_S``, not 5 ms: the event loop (every order's
       ack) shares the GIL with worker threads that run pure Python for long stretches (the
       account flows' SQL, the read-model projector); with the default a request that arrives
       while one of them runs waits up to 5 ms before the loop even sees it (§30)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
