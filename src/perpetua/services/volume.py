"""Volume tiers: each user's 30-day average daily traded volume in USD, measured at 00:00 UTC
from the executions read model, turned into ``SetFeeTier`` commands through the sequencer.

Why a service and not the core (docs/decisions.md, "Volume tiers"): the core does not know which
accounts belong to one user (sub-accounts are the accounts service's data) nor a USD price for
XBt-settled quanto volume; the read models already hold every execution. The tier the core
charges is still journaled state: the ``SetFeeTier`` commands are in the journal, so a replay
charges exactly the fees that were charged, with no clock and no SQL.

Rules:
1. Window: the ``ADV_WINDOW_DAYS`` whole UTC days before the boundary, ``[b - 30 d, b)``; the
   average divides by 30 whatever the account's age (BitMEX's rule).
2. Counted: Trade executions, maker and taker alike, of every instrument. Spot volume is
   ``advUsdSpot``, derivatives ``advUsdContract``; ``advUsd`` is their sum and sets the tier.
3. USD value of an execution: USDt-settled, ``|execCost|`` / 1e6; inverse (contracts in USD),
   ``lastQty * |multiplier| / 1e8``; any other XBt-settled (quanto), ``|execCost|`` XBt at the
   XBT price given when measuring (``usd_per_xbt``): a stated approximation. Amounts are kept
   in micro-USD (ints) and rounded down to whole USD only for the tier and the route.
4. Per user: a sub-account's volume counts for its owner, and every account of the family gets
   the family's tier.
5. Tiers: the highest row of the configured ``adv_usd_min`` table (same length as the core's
   ``FEE_TIERS``, whose rates it selects) that the family's ADV reaches. A ``SetFeeTier`` is
   submitted only for an account whose tier differs from the one the service knows it has
   (seeded from the engine, then followed from ``FeeSettingsChanged`` events), so a restart
   submits nothing new and an account whose volume fell away is lowered again.
6. Runs once per boundary: the job checks every ``interval`` whether a new UTC day began (on the
   sequencer's clock) and measures then, once the read models hold every command the service
   has seen; a failing run is retried at the next interval.
7. In cluster mode (decisions §28) the leading sequencer runs the job and keeps each
   measurement in the shared database (`SqlFigures`: the figures, then a ``volume_runs`` row
   once every change was submitted); gateways serve ``/user/tradingVolume`` from there
   (`StoredVolume`, refreshed every ``FIGURES_REFRESH_S``). A new leader measures the current
   day again at its start (a read: a run a dead leader left half done is finished) and submits
   only tiers its engine does not have yet (rule 5), so no tier change is made twice.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol

from sqlalchemy import Engine, delete, func, insert, select

from perpetua.core.calendar import NS_PER_DAY as DAY_NS
from perpetua.core.catalogue import FEE_TIERS
from perpetua.core.commands import Command, SetFeeTier
from perpetua.core.events import FeeSettingsChanged
from perpetua.core.instruments import InstrumentKind, InstrumentSpec, Payout
from perpetua.store.schema import users, volume_figures, volume_runs

__all__ = [
    "ADV_WINDOW_DAYS",
    "FIGURES_REFRESH_S",
    "AccountOwners",
    "SqlFigures",
    "SqlOwners",
    "StoredVolume",
    "TierTable",
    "TradingVolume",
    "VolumeTiers",
    "usd_micro",
]

log = logging.getLogger("perpetua.volume")

ADV_WINDOW_DAYS: Final = 30
USD_MICRO: Final = 1_000_000  # micro-USD per USD
_XBT: Final = 100_000_000  # XBt per XBT
FIGURES_REFRESH_S: Final = 10.0  # a cluster gateway re-reads the stored figures this often


class TradingVolume(NamedTuple):
    """A family's ADV in whole USD, as ``/user/tradingVolume`` serves it."""

    adv_usd: int
    adv_usd_spot: int
    adv_usd_contract: int
    tier: int
    measured_ns: int  # the boundary it was measured at (0: not yet)


@dataclass(frozen=True, slots=True)
class TierTable:
    """``adv_usd_min`` per row of the core's ``FEE_TIERS`` (configuration: runtime
    ``[fees] adv_usd_min``): ascending, starting at 0, one per core row."""

    adv_usd_min: tuple[int, ...] = tuple(row.adv_usd_min for row in FEE_TIERS)

    def __post_init__(self) -> None:
        rows = self.adv_usd_min
        if len(rows) != len(FEE_TIERS):
            raise ValueError(f"fee tiers: {len(rows)} thresholds for {len(FEE_TIERS)} tiers")
        if rows[0] != 0 or any(b <= a for a, b in zip(rows, rows[1:], strict=False)):
            raise ValueError("fee tiers: thresholds must start at 0 and rise strictly")

    def tier(self, adv_usd: int) -> int:
        found = 0
        for position, minimum in enumerate(self.adv_usd_min):
            if adv_usd >= minimum:
                found = position
        return found


class AccountOwners(Protocol):
    def owners(self) -> dict[int, int]:
        """sub-account -> its owner's account (main accounts are absent)."""
        ...


class SqlOwners:
    """``AccountOwners`` over the accounts service's ``users`` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def owners(self) -> dict[int, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(users.c.id, users.c.owner_id).where(users.c.owner_id.is_not(None))
            ).all()
        return {int(r.id): int(r.owner_id) for r in rows}


def usd_micro(spec: InstrumentSpec, qty: int, cost: int, usd_per_xbt: int) -> int:
    """Micro-USD traded (rule 3): ``qty`` contracts and ``cost`` = sum of |execCost|."""
    if spec.settl_currency == "USDt":
        return cost
    if spec.payout == Payout.INVERSE:
        return qty * abs(spec.multiplier) * USD_MICRO // _XBT
    return cost * usd_per_xbt * USD_MICRO // _XBT


Submit = Callable[[Command], Awaitable[Any]]


class VolumeTiers:
    """Measures ADV at each boundary and submits the tier changes (see the module docstring)."""

    def __init__(
        self,
        specs: Mapping[str, InstrumentSpec],
        read: Callable[[int, int], Sequence[Any]],
        owners: AccountOwners,
        submit: Submit,
        now_ns: Callable[[], int],
        *,
        table: TierTable | None = None,
        usd_per_xbt: Callable[[], int] = lambda: 0,
        known_tiers: Mapping[int, int] | None = None,
        caught_up: Callable[[int], Awaitable[bool]] | None = None,
        store: "SqlFigures | None" = None,
    ) -> None:
        """``read(start_ns, end_ns)``: ``queries.traded_totals`` rows (run off the loop);
        ``known_tiers``: the engine's nonzero tiers at start (``sequencer.seed.engine_seed``)."""
        self.specs = specs
        self.read = read
        self.owners = owners
        self.submit = submit
        self.now_ns = now_ns
        self.table = table or TierTable()
        self.usd_per_xbt = usd_per_xbt
        self.known: dict[int, int] = dict(known_tiers or {})
        self.figures: dict[int, TradingVolume] = {}  # family owner -> figures
        self.family_of: dict[int, int] = {}
        self.measured_ns = 0
        self.seen_seq = 0  # the last command seen from the sequencer
        self.caught_up = caught_up
        self.store = store  # cluster mode: the figures kept for the gateways (rule 7)

    # Following the engine ------------------------------------------------------------------

    def on_events(self, events: Iterable[object]) -> None:
        """Fold ``FeeSettingsChanged`` (any thread: one dict store per event)."""
        for event in events:
            if type(event) is FeeSettingsChanged:
                self.known[event.account] = event.tier

    def on_batch(self, batch: Sequence[Any]) -> None:
        """A sequencer batch subscriber: each item carries ``events`` (sequencer.Applied)."""
        for applied in batch:
            self.on_events(applied.events)
            self.seen_seq = applied.seq

    # Reading ------------------------------------------------------------------------------

    def volume_of(self, account: int) -> TradingVolume:
        owner = self.family_of.get(account, account)
        found = self.figures.get(owner)
        if found is None:
            return TradingVolume(0, 0, 0, self.known.get(account, 0), self.measured_ns)
        return found

    # Measuring ----------------------------------------------------------------------------

    def measure(self, boundary_ns: int) -> list[SetFeeTier]:
        """The figures at ``boundary_ns`` and the tier changes they call for (blocking)."""
        start = boundary_ns - ADV_WINDOW_DAYS * DAY_NS
        owners = self.owners.owners()
        price = self.usd_per_xbt()
        spot: dict[int, int] = {}
        contract: dict[int, int] = {}
        accounts: set[int] = set()
        for row in self.read(start, boundary_ns):
            spec = self.specs.get(row.symbol)
            if spec is None or int(row.account) <= 0:
                continue
            account = int(row.account)
            accounts.add(account)
            family = owners.get(account, account)
            amount = usd_micro(spec, int(row.qty), int(row.cost), price)
            book = spot if spec.kind == InstrumentKind.SPOT else contract
            book[family] = book.get(family, 0) + amount
        figures: dict[int, TradingVolume] = {}
        for family in sorted(set(spot) | set(contract)):
            s = spot.get(family, 0) // (ADV_WINDOW_DAYS * USD_MICRO)
            c = contract.get(family, 0) // (ADV_WINDOW_DAYS * USD_MICRO)
            total = (spot.get(family, 0) + contract.get(family, 0)) // (ADV_WINDOW_DAYS * USD_MICRO)
            figures[family] = TradingVolume(total, s, c, self.table.tier(total), boundary_ns)
        changes = []
        for account in sorted(accounts | {a for a, t in self.known.items() if t}):
            family = owners.get(account, account)
            found = figures.get(family)
            tier = found.tier if found is not None else 0
            if self.known.get(account, 0) != tier:
                changes.append(SetFeeTier(0, account, tier))
        self.figures = figures
        self.family_of = owners
        self.measured_ns = boundary_ns
        if self.store is not None:
            self.store.save(boundary_ns, figures)
        return changes

    async def run_boundary(self, boundary_ns: int) -> int:
        """Measure at ``boundary_ns`` and submit its changes; the number submitted. The read
        models are first let catch up with every command seen (the day's last fills)."""
        if self.caught_up is not None:
            await self.caught_up(self.seen_seq)
        changes = await asyncio.to_thread(self.measure, boundary_ns)
        for command in changes:
            await self.submit(command)
            self.known[command.account] = command.tier
        if self.store is not None:
            await asyncio.to_thread(self.store.finish, boundary_ns, len(changes))
        if changes:
            log.info("volume tiers at %d: %d accounts changed tier", boundary_ns, len(changes))
        return len(changes)

    async def step(self) -> None:
        """A ``PeriodicJob`` step: measure once per UTC day, at the first step after 00:00."""
        boundary = self.now_ns() // DAY_NS * DAY_NS
        if boundary > self.measured_ns:
            await self.run_boundary(boundary)


class SqlFigures:
    """Rule 7: the measurements in the shared database (written by the leader's job)."""

    def __init__(self, engine: Engine, clock_ns: Callable[[], int]) -> None:
        self.engine = engine
        self.clock_ns = clock_ns

    def save(self, boundary_ns: int, figures: Mapping[int, TradingVolume]) -> None:
        """Replace the figures with those measured at ``boundary_ns`` (one transaction)."""
        with self.engine.begin() as conn:
            conn.execute(delete(volume_figures))
            if figures:
                conn.execute(
                    insert(volume_figures),
                    [
                        {
                            "family": family,
                            "adv_usd": f.adv_usd,
                            "adv_usd_spot": f.adv_usd_spot,
                            "adv_usd_contract": f.adv_usd_contract,
                            "tier": f.tier,
                            "measured_ns": boundary_ns,
                        }
                        for family, f in figures.items()
                    ],
                )

    def finish(self, boundary_ns: int, changes: int) -> None:
        """``boundary_ns`` is done: every change it called for is durable in the core."""
        with self.engine.begin() as conn:
            done = conn.execute(
                select(volume_runs.c.boundary_ns).where(volume_runs.c.boundary_ns == boundary_ns)
            ).first()
            if done is None:
                conn.execute(
                    insert(volume_runs).values(
                        boundary_ns=boundary_ns, measured_at_ns=self.clock_ns(), changes=changes
                    )
                )

    def last_finished(self) -> int:
        """The newest boundary a run finished (0: none)."""
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(volume_runs.c.boundary_ns))).scalar()
        return int(value or 0)

    def load(self) -> tuple[dict[int, TradingVolume], int]:
        """The stored figures by family, and the boundary of the newest finished run."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(volume_figures)).all()
        figures = {
            int(r.family): TradingVolume(
                int(r.adv_usd),
                int(r.adv_usd_spot),
                int(r.adv_usd_contract),
                int(r.tier),
                int(r.measured_ns),
            )  # fmt: skip
            for r in rows
        }
        return figures, self.last_finished()


class StoredVolume:
    """A cluster gateway's `TradingVolumePort` (rule 7): the figures the leader stored, kept in
    memory (``volume_of`` runs on the event loop) and re-read by `refresh`, a periodic job."""

    def __init__(self, figures: SqlFigures, owners: AccountOwners) -> None:
        self.figures_store = figures
        self.owners = owners
        self.figures: dict[int, TradingVolume] = {}
        self.family_of: dict[int, int] = {}
        self.measured_ns = 0

    def load(self) -> None:
        """Blocking: read the figures and the families."""
        figures, measured = self.figures_store.load()
        owners = self.owners.owners()
        self.figures, self.family_of, self.measured_ns = figures, owners, measured

    async def refresh(self) -> None:
        await asyncio.to_thread(self.load)

    def volume_of(self, account: int) -> TradingVolume:
        found = self.figures.get(self.family_of.get(account, account))
        if found is None:
            return TradingVolume(0, 0, 0, 0, self.measured_ns)
        return found
