"""The read-model projector: turns the sequencer's durable output into SQL rows.

Input is a stream of records ``(seq, ts_ns, command, events)``, one per journaled command, in
sequence order. ``Projector.project(records)`` writes them in SQL transactions of at most
``PROJECT_COMMANDS_PER_TRANSACTION_MAX`` commands (and about ``PROJECT_EVENTS_PER_TRANSACTION_MAX``
events), each transaction also advancing ``projector_state.last_seq``. So:

* idempotent by seq: a record with ``seq <= last_seq`` is skipped, so recovery can replay the
  journal into the projector from any point before its last commit;
* gap-free: a record with ``seq > last_seq + 1`` means commands were lost on the way, and the
  rows (running balances above all) would be wrong: ``ProjectionGap`` stops the projector.
  The very first record projected into an empty database may have any seq;
* one writer: a second projector on the same database is detected by the compare-and-set on
  ``last_seq`` (``ProjectionConflict``).

Event mapping (tables in ``schema``): OrderEvent -> ``executions`` row and ``orders`` upsert
(the insurance fund's orders also -> ``liquidations``); Trade -> ``trades`` row (with
tickDirection) and ``trade_bins``; Transfer, DepositCredited and WithdrawalUpdated ->
``wallets``, ``transactions`` and ``insurance`` (see ``wallet_book``); PositionChanged ->
``positions`` (margins included; OrderMarginChanged updates its ``order_margin``); Funding ->
``funding``; Settled -> ``settlement``; UnstakingUpdated -> ``unstaking_requests`` (the
request's latest status); FundingPaid, PositionLiquidated, Deleveraged, PositionSettled ->
``executions`` rows (see ``risk_rows``). BookLevel, Rejected, IndexUpdated,
InstrumentStateChanged, FeeSettingsChanged, CancelAllAfterSet, MarkUpdated, PremiumSampled (the
live funding series) and DeleverageRanked (the live ADL quintiles) have no history table. An
event type the projector does not know is logged once and skipped: add it to ``EVENT_HANDLERS``
with a row builder from ``rows``.

Instruments: ``catalogue`` (the recovered engine's, with the futures it listed at runtime; the
default catalogue if not given), and each future a ``ListFuture`` record lists from then on.

``ProjectorThread`` (``projector_thread``) runs a projector on its own thread behind a bounded
queue, and ``catch_up`` re-derives from the journal what the live stream could not deliver.
"""

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Engine, delete, insert, select, update

from perpetua.core.catalogue import FutureSeries, by_symbol, default_catalogue
from perpetua.core.commands import Command, DefineFutureSeries, ListFuture
from perpetua.core.events import (
    AccountRestricted,
    AnnouncementPublished,
    AnnouncementWithdrawn,
    BookLevel,
    CancelAllAfterSet,
    Converted,
    DeleverageRanked,
    DepositCredited,
    Event,
    FeeSettingsChanged,
    Funding,
    IndexUpdated,
    InstrumentStateChanged,
    MarkUpdated,
    OrderEvent,
    OrderMarginChanged,
    PositionChanged,
    PremiumSampled,
    Rejected,
    Settled,
    StakingChanged,
    Trade,
    TradingCalendarChanged,
    Transfer,
    UnstakingUpdated,
    WithdrawalUpdated,
)
from perpetua.core.instruments import InstrumentKind, InstrumentSpec
from perpetua.core.ledger import INSURANCE
from perpetua.store import risk_rows, rows
from perpetua.store.candles import CandleBook
from perpetua.store.database import insert_rows, insert_values, upsert, upsert_values
from perpetua.store.limits import (
    PROGRESS_LOG_INTERVAL_S,
    PROJECT_COMMANDS_PER_TRANSACTION_MAX,
    PROJECT_EVENTS_PER_TRANSACTION_MAX,
)
from perpetua.store.schema import (
    announcements,
    executions,
    funding,
    liquidations,
    orders,
    positions,
    projector_state,
    settlement,
    trade_bins,
    trades,
    unstaking_requests,
)
from perpetua.store.symbols import defined_series, listed_spec
from perpetua.store.wallet_book import WalletBook

__all__ = [
    "EVENT_HANDLERS",
    "IGNORED_EVENTS",
    "ProjectionConflict",
    "ProjectionError",
    "ProjectionGap",
    "NO_SEQ",
    "Projector",
    "Record",
]

log = logging.getLogger(__name__)

Record = tuple[int, int, Command, Sequence[Event]]
NO_SEQ = -1  # last_seq of a database nothing was projected into

IGNORED_EVENTS: tuple[type, ...] = (
    AccountRestricted,
    BookLevel,
    Rejected,
    IndexUpdated,
    InstrumentStateChanged,
    FeeSettingsChanged,
    CancelAllAfterSet,
    MarkUpdated,
    PremiumSampled,
    StakingChanged,  # the gateway's staking views fold these (wallet rows come from Transfer)
    Converted,  # wallet rows come from its two Transfers
    TradingCalendarChanged,
    DeleverageRanked,  # the gateway's live views keep the last ranking
)


class ProjectionError(Exception):
    """Stop: the read models cannot follow this stream (never retried blindly)."""


class ProjectionGap(ProjectionError):
    """A record's seq skips past last_seq + 1: commands are missing from the stream."""


class ProjectionConflict(ProjectionError):
    """last_seq changed under us: another projector writes to this database."""


class _Chunk:
    """Rows gathered for one SQL transaction."""

    def __init__(self) -> None:
        self.executions: list[tuple[object, ...]] = []  # rows.EXECUTION_COLUMNS
        self.orders: dict[int, tuple[object, ...]] = {}  # rows.ORDER_COLUMNS
        self.trades: list[dict[str, object]] = []
        self.positions: dict[tuple[int, str], dict[str, object]] = {}
        # (account, symbol) -> (order margin, seq, ts_ns), for positions with no row in this chunk
        self.order_margins: dict[tuple[int, str], tuple[int, int, int]] = {}
        self.funding: list[dict[str, object]] = []
        self.settlement: list[dict[str, object]] = []
        self.liquidations: dict[int, dict[str, object]] = {}


Handler = Callable[["Projector", Connection, _Chunk, int, int, Any], None]


def _on_order(
    p: "Projector", conn: Connection, chunk: _Chunk, seq: int, index: int, ev: OrderEvent
) -> None:
    shared = rows.order_shared(ev)
    chunk.executions.append(rows.execution_values(ev, seq, shared))
    earlier = chunk.orders.get(ev.order_id)
    created_ns = ev.ts_ns if earlier is None else cast(int, earlier[rows.ORDER_CREATED_NS_AT])
    chunk.orders[ev.order_id] = rows.order_values(ev, created_ns, seq, shared)
    if ev.account == INSURANCE:  # the liquidation engine's order: the public liquidation table
        liquidation = risk_rows.liquidation_row_of(ev, seq)
        if liquidation is not None:
            chunk.liquidations[ev.order_id] = liquidation


def _on_trade(
    p: "Projector", conn: Connection, chunk: _Chunk, seq: int, index: int, ev: Trade
) -> None:
    last = p.last_print(conn, ev.symbol)
    direction = rows.tick_direction(ev.price, last[0] if last else None, last[1] if last else 0)
    p.last_prints[ev.symbol] = (ev.price, direction)
    chunk.trades.append(rows.trade_row(ev, direction, seq))
    p.candles.add_print(conn, ev.ts_ns, ev.symbol, ev.price, ev.qty, ev.gross_value)


def _on_transfer(
    p: "Projector", conn: Connection, chunk: _Chunk, seq: int, index: int, ev: Transfer
) -> None:
    p.wallets.on_transfer(ev)


def _on_deposit(
    p: "Projector", conn: Connection, chunk: _Chunk, seq: int, index: int, ev: DepositCredited
) -> None:
    p.wallets.on_deposit(ev)


def _on_withdrawal(
    p: "Projector", conn: Connection, chunk: _Chunk, seq: int, index: int, ev: WithdrawalUpdated
) -> None:
    p.wallets.on_withdrawal(ev)


def _on_position(
    p: "Projector", conn: Connection, chunk: _Chunk, seq: int, index: int, ev: PositionChanged
) -> None:
    chunk.positions[(ev.account, ev.symbol)] = rows.position_row(ev, seq)
    chunk.order_margins.pop((ev.account, ev.symbol), None)


def _on_order_margin(
    p: "Projector", conn: Connection, chunk: _Chunk, seq: int, index: int, ev: OrderMarginChanged
) -> None:
    """The working orders' margin of a position the command did not change; a position with no
    row yet gets an orders-only row (``rows.orders_only_row``)."""
    key = (ev.account, ev.symbol)
    row = chunk.positions.get(key)
    if row is not None:
        row["order_margin"] = ev.order_margin
    else:
        chunk.order_margins[key] = (ev.order_margin, seq, ev.ts_ns)


def _on_funding(
    p: "Projector", conn: Connection, chunk: _Chunk, seq: int, index: int, ev: Funding
) -> None:
    chunk.funding.append(risk_rows.funding_row_of(ev, seq))


def _on_settled(
    p: "Projector", conn: Connection, chunk: _Chunk, seq: int, index: int, ev: Settled
) -> None:
    spec = p.specs.get(ev.symbol)
    if spec is None:
        p.warn_once(
            f"settlement of {ev.symbol}",
            "projector: %s is not in the catalogue: no settlement row",
            ev.symbol,
        )
        return
    chunk.settlement.append(risk_rows.settlement_row_of(ev, spec, seq))


def _on_risk_execution(
    p: "Projector", conn: Connection, chunk: _Chunk, seq: int, index: int, ev: object
) -> None:
    """FundingPaid, PositionLiquidated, Deleveraged, PositionSettled: an execution row."""
    row = risk_rows.risk_execution(seq, p.command_events, index, p.specs)
    if row is not None:
        chunk.executions.append(rows.execution_values(row, seq))


def _on_announcement(
    p: "Projector", conn: Connection, chunk: _Chunk, seq: int, index: int, ev: object
) -> None:
    """An announcement's id is its command's seq; a withdrawn one is deleted."""
    if type(ev) is AnnouncementPublished:
        conn.execute(insert(announcements).values(rows.announcement_row(ev, seq)))
    elif type(ev) is AnnouncementWithdrawn:
        conn.execute(delete(announcements).where(announcements.c.id == ev.announcement_id))


def _on_unstaking(
    p: "Projector", conn: Connection, chunk: _Chunk, seq: int, index: int, ev: object
) -> None:
    """A request's latest status: the row is written once, then updated on cancel or release."""
    if type(ev) is not UnstakingUpdated:
        return
    row = rows.unstaking_row(ev)
    updated = conn.execute(
        update(unstaking_requests)
        .where(unstaking_requests.c.request_id == ev.request_id)
        .values(row)
    )
    if updated.rowcount == 0:
        conn.execute(insert(unstaking_requests).values(row))


EVENT_HANDLERS: dict[type, Handler] = {
    OrderEvent: _on_order,
    Trade: _on_trade,
    Transfer: _on_transfer,
    DepositCredited: _on_deposit,
    WithdrawalUpdated: _on_withdrawal,
    PositionChanged: _on_position,
    OrderMarginChanged: _on_order_margin,
    Funding: _on_funding,
    Settled: _on_settled,
    AnnouncementPublished: _on_announcement,
    AnnouncementWithdrawn: _on_announcement,
    UnstakingUpdated: _on_unstaking,
    **{kind: _on_risk_execution for kind in risk_rows.RISK_EXECUTION_EVENTS},
}


class Projector:
    """Writes records into the read-model tables; one instance per database."""

    def __init__(
        self,
        engine: Engine,
        catalogue: Sequence[InstrumentSpec] | None = None,
        series: Mapping[str, FutureSeries] | None = None,
    ) -> None:
        self.engine = engine
        # futures series the engine defined (the recovered engine's, then the stream's)
        self.series: dict[str, FutureSeries] = dict(series or {})
        specs = by_symbol(tuple(catalogue) if catalogue is not None else default_catalogue())
        self.specs = specs
        self.command_events: Sequence[Event] = ()
        self._spot_symbols = frozenset(
            s for s, spec in specs.items() if spec.kind == InstrumentKind.SPOT
        )
        self.wallets = WalletBook()
        self.candles = CandleBook()
        self.last_prints: dict[str, tuple[int, int] | None] = {}
        self._warned: set[str] = set()
        self._last_seq = self._read_last_seq()
        self._progress_s = time.monotonic()
        self._progress_count = 0

    @property
    def last_seq(self) -> int:
        """The last projected seq, ``NO_SEQ`` (-1) when nothing was projected yet."""
        return self._last_seq

    def _read_last_seq(self) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(select(projector_state.c.last_seq)).scalar()
        return NO_SEQ if value is None else int(value)

    def last_print(self, conn: Connection, symbol: str) -> tuple[int, int] | None:
        if symbol not in self.last_prints:
            row = conn.execute(
                select(trades.c.price, trades.c.tick_direction)
                .where(trades.c.symbol == symbol)
                .order_by(trades.c.timestamp_ns.desc(), trades.c.trd_match_id.desc())
                .limit(1)
            ).first()
            self.last_prints[symbol] = None if row is None else (row[0], row[1])
        return self.last_prints[symbol]

    def __call__(self, seq: int, ts_ns: int, command: Command, events: Sequence[Event]) -> None:
        """Subscriber form: project one record."""
        self.project(((seq, ts_ns, command, events),))

    def project(self, records: Iterable[Record]) -> int:
        """Project ``records`` (in seq order); return how many were new (not skipped)."""
        projected = 0
        for chunk in _chunks(records):
            projected += self._project_chunk(chunk)
        return projected

    def _fresh(self, records: list[Record]) -> list[Record]:
        fresh: list[Record] = []
        last = self._last_seq
        for record in records:
            seq = record[0]
            if seq <= last:  # replayed from the start (cluster mode): no rows, but the
                self._learn(record)  # series and listed futures' specs are still needed
                continue
            if last != NO_SEQ and seq != last + 1:
                raise ProjectionGap(f"record seq {seq} after last projected seq {last}")
            fresh.append(record)
            last = seq
        return fresh

    def _project_chunk(self, records: list[Record]) -> int:
        fresh = self._fresh(records)
        if not fresh:
            return 0
        try:
            with self.engine.begin() as conn:
                # claim first: the compare-and-set (a row lock on PostgreSQL) keeps a second
                # writer out before it reads balances or writes a row
                self._advance(conn, fresh[-1][0], fresh[-1][1])
                chunk = _Chunk()
                for record in fresh:
                    self._learn(record)
                    self._project_command(conn, chunk, record[0], record[3])
                self._write(conn, chunk)
        except BaseException:
            self._forget()
            raise
        self._last_seq = fresh[-1][0]
        self._log_progress(len(fresh))
        return len(fresh)

    def _learn(self, record: Record) -> None:
        """What a record teaches about the markets, written rows or not: a futures series
        defined, a future listed (in stream order: a series before the futures listed on it)."""
        _seq, ts_ns, command, events = record
        if type(command) is ListFuture:
            self._listed(ts_ns, command, events)
        elif type(command) is DefineFutureSeries:
            found = defined_series(command, events)
            if found is not None:
                self.series[found.key] = found

    def _listed(self, ts_ns: int, command: Command, events: Sequence[Event]) -> None:
        """A future listed at runtime: its settlement and risk rows need its spec."""
        spec = listed_spec(ts_ns, command, events, len(self.specs), self.series)
        if spec is not None and spec.symbol not in self.specs:
            self.specs[spec.symbol] = spec

    def _project_command(
        self, conn: Connection, chunk: _Chunk, seq: int, events: Sequence[Event]
    ) -> None:
        self.wallets.begin_command(conn, seq, events, self._spot_symbols)
        self.command_events = events
        for index, ev in enumerate(events):
            handler = EVENT_HANDLERS.get(type(ev))
            if handler is not None:
                handler(self, conn, chunk, seq, index, ev)
            elif not isinstance(ev, IGNORED_EVENTS):
                name = type(ev).__name__
                self.warn_once(name, "projector: no read model for event type %s; skipped", name)

    def warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def _write(self, conn: Connection, chunk: _Chunk) -> None:
        insert_values(conn, executions, rows.EXECUTION_COLUMNS, chunk.executions)
        upsert_values(
            conn,
            orders,
            rows.ORDER_COLUMNS,
            list(chunk.orders.values()),
            ("order_id",),
            keep=("created_ns",),
        )
        insert_rows(conn, trades, chunk.trades)
        upsert(conn, positions, list(chunk.positions.values()), ("account", "symbol"))
        if chunk.order_margins:  # a row's other columns kept; a new row marks orders only
            margins = [rows.orders_only_row(*key, *v) for key, v in chunk.order_margins.items()]
            kept = tuple(c for c in margins[0] if c not in ("account", "symbol", "order_margin"))
            upsert(conn, positions, margins, ("account", "symbol"), keep=kept)
        insert_rows(conn, funding, chunk.funding)
        insert_rows(conn, settlement, chunk.settlement)
        upsert(conn, liquidations, list(chunk.liquidations.values()), ("order_id",))
        upsert(conn, trade_bins, self.candles.take_dirty(), ("bin_size", "symbol", "timestamp_ns"))
        self.wallets.write(conn)

    def _advance(self, conn: Connection, seq: int, ts_ns: int) -> None:
        if self._last_seq == NO_SEQ:
            if conn.execute(select(projector_state.c.id)).first() is not None:
                raise ProjectionConflict("projector_state appeared under a fresh projector")
            conn.execute(projector_state.insert().values(id=1, last_seq=seq, updated_ns=ts_ns))
            return
        result = conn.execute(
            update(projector_state)
            .where(projector_state.c.id == 1, projector_state.c.last_seq == self._last_seq)
            .values(last_seq=seq, updated_ns=ts_ns)
        )
        if result.rowcount != 1:
            raise ProjectionConflict(f"last_seq is no longer {self._last_seq}")

    def _forget(self) -> None:
        """After a failed transaction, caches may hold uncommitted state: drop them all."""
        self.wallets.reset()
        self.candles.reset()
        self.last_prints.clear()
        self._last_seq = self._read_last_seq()

    def _log_progress(self, count: int) -> None:
        self._progress_count += count
        now = time.monotonic()
        elapsed = now - self._progress_s
        if elapsed >= PROGRESS_LOG_INTERVAL_S:
            log.info(
                "projector: at seq %d, %d commands in %.1f s (%.0f/s)",
                self._last_seq,
                self._progress_count,
                elapsed,
                self._progress_count / elapsed,
                extra={"seq": self._last_seq},
            )
            self._progress_s = now
            self._progress_count = 0


def _chunks(records: Iterable[Record]) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    events = 0
    for record in records:
        chunk.append(record)
        events += len(record[3])
        if (
            len(chunk) >= PROJECT_COMMANDS_PER_TRANSACTION_MAX
            or events >= PROJECT_EVENTS_PER_TRANSACTION_MAX
        ):
            yield chunk
            chunk, events = [], 0
    if chunk:
        yield chunk
