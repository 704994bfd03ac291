"""Rows for the risk engine's events: funding, settlement, liquidation orders, and the
executions BitMEX shows for funding, liquidation, deleveraging and settlement.

The core publishes these as their own events (``FundingPaid``, ``PositionLiquidated``,
``Deleveraged``, ``PositionSettled``), not as ``OrderEvent``s. ``risk_executions`` turns them
into ``OrderEvent``-shaped execution rows, so the ``executions`` table, ``/execution``,
``/execution/tradeHistory`` and the WebSocket ``execution`` table show them with the code that
shows fills. The gateway calls the same function on the live stream, so a row has the same
``execID`` live and from history.

Choices (BitMEX publishes no exact shape for all of them):

* ``execType``: ``Funding`` and ``Settlement`` (the core's ``ExecType``); ``Liquidation`` for
  the liquidation engine taking a position over at its bankruptcy price, ``Bankruptcy`` for the
  same when the insurance fund had to cover part of the loss (a ``BANKRUPTCY_COVER`` transfer
  among the takeover's transfers); ``Deleverage`` for an auto-deleveraged position (BitMEX shows
  ADL fills as trades with text "Deleverage"; a distinct type lets a client tell them apart and
  ``tradeHistory`` includes it). The last three are the read models' own ints (``EXEC_TYPE_*``,
  above the core's range).
* ids: ``exec_id`` = ``SYNTHETIC_EXEC_ID_BASE | seq << 20 | index`` of the event in its
  command, disjoint from the core's execution ids (which count up from 1); ``order_id`` 0 (the
  all-zero orderID of BitMEX's funding rows).
* Funding: ``lastQty`` = |position|, ``lastPx`` = the mark funding was paid at (nearest tick),
  ``execCost`` = the position's signed value at ``lastPx``, ``commission`` = the rate (a whole
  millionth, the ``funding`` row's rate), ``execComm`` = the funding paid (negative: received):
  ``ceil(|execCost| x commission)`` paid, ``floor`` received (a bankrupt payer's row shows what
  its wallet paid; the insurance fund covered the rest).
* Liquidation, deleverage, settlement: ``side`` is the closing trade's side, ``lastQty`` its
  size, ``lastPx`` its price (settlement: the settled price, a whole tick), ``execCost`` its
  signed value, ``execComm`` the liquidation or settlement fee; a settlement's ``commission``
  is the instrument's ``settlementFee`` and its fee ``ceil(|execCost| x settlementFee)`` (less
  if the account had less).
"""

from collections.abc import Mapping, Sequence
from math import gcd

from perpetua.core.enums import ExecType, OrdStatus
from perpetua.core.events import (
    Deleveraged,
    Event,
    Funding,
    FundingPaid,
    OrderEvent,
    PositionLiquidated,
    PositionSettled,
    Settled,
    Transfer,
)
from perpetua.core.instruments import InstrumentSpec, contract_value, contract_value_at
from perpetua.core.ledger import INSURANCE, TransferCode
from perpetua.core.units import PRICE_FINE_PER_TICK
from perpetua.store.rows import Row, funding_row, liquidation_row, settlement_row
from perpetua.store.schema import TRANSACT_INDEX_BITS
from perpetua.wire.vocabulary import (
    EXEC_TYPE_BANKRUPTCY,
    EXEC_TYPE_DELEVERAGE,
    EXEC_TYPE_LIQUIDATION,
    ORD_STATUS_OPEN_VALUES,
    SIDE_BUY,
    SIDE_SELL,
)

__all__ = [
    "FUNDING_RATE_DEN",
    "RISK_EXECUTION_EVENTS",
    "SYNTHETIC_EXEC_ID_BASE",
    "funding_row_of",
    "liquidation_row_of",
    "risk_execution",
    "risk_executions",
    "settlement_row_of",
    "synthetic_exec_id",
]

SYNTHETIC_EXEC_ID_BASE = 1 << 62
_SEQ_MAX = (1 << (62 - TRANSACT_INDEX_BITS)) - 1
FUNDING_RATE_DEN = 1_000_000_000  # the core's rates are parts per billion
_PPB_PER_PPM = 1_000
_OPEN = ORD_STATUS_OPEN_VALUES
_SELL, _BUY = SIDE_SELL, SIDE_BUY


def synthetic_exec_id(seq: int, index: int) -> int:
    """The execution id of the risk event at ``index`` in command ``seq``."""
    if not (0 < seq <= _SEQ_MAX and 0 <= index < 1 << TRANSACT_INDEX_BITS):
        raise ValueError(f"no synthetic execution id for seq {seq}, event {index}")
    return SYNTHETIC_EXEC_ID_BASE | seq << TRANSACT_INDEX_BITS | index


def _nearest_tick(fine: int) -> int:
    return (fine + PRICE_FINE_PER_TICK // 2) // PRICE_FINE_PER_TICK


def _row(
    ts_ns: int,
    exec_type: int,
    exec_id: int,
    account: int,
    symbol: str,
    side: int,
    qty: int,
    price: int | None,
    exec_cost: int,
    exec_comm: int,
    fee_rate_ppm: int,
    text: str,
) -> OrderEvent:
    size = abs(qty)
    return OrderEvent(
        ts_ns,
        exec_type,
        exec_id,
        0,
        account,
        symbol,
        side,
        0,
        0,
        0,
        size,
        price,
        None,
        None,
        0,
        None,
        0,
        "",
        "",
        int(OrdStatus.FILLED),
        False,
        False,
        0,
        size,
        size * price if price is not None else 0,
        text,
        size,
        price,
        0,
        exec_cost,
        exec_comm,
        fee_rate_ppm,
        0,
        ts_ns,
    )


def _funding(ev: FundingPaid, spec: InstrumentSpec | None, exec_id: int) -> OrderEvent:
    sign = 1 if (ev.qty > 0) == (spec is None or spec.multiplier > 0) else -1
    rate_ppm = _trunc(ev.rate_ppb, _PPB_PER_PPM)
    return _row(
        ev.ts_ns,
        int(ExecType.FUNDING),
        exec_id,
        ev.account,
        ev.symbol,
        0,
        ev.qty,
        ev.mark_price,
        sign * ev.mark_value,
        -ev.amount,
        rate_ppm,
        "Funding",
    )


def _trunc(num: int, den: int) -> int:
    return num // den if num >= 0 else -(-num // den)


def _covered(events: Sequence[Event], index: int) -> bool:
    """Did the transfers just before ``events[index]`` draw on the insurance fund?"""
    for position in range(index - 1, -1, -1):
        ev = events[position]
        if type(ev) is not Transfer:
            return False
        if ev.code == TransferCode.BANKRUPTCY_COVER:
            return True
    return False


RiskEvent = FundingPaid | PositionLiquidated | Deleveraged | PositionSettled
RISK_EXECUTION_EVENTS: tuple[type, ...] = (
    FundingPaid,
    PositionLiquidated,
    Deleveraged,
    PositionSettled,
)


def risk_execution(
    seq: int, events: Sequence[Event], index: int, specs: Mapping[str, InstrumentSpec]
) -> OrderEvent | None:
    """The execution row of ``events[index]`` (a risk event of command ``seq``), or None."""
    ev = events[index]
    if not isinstance(ev, RiskEvent):
        return None
    spec = specs.get(ev.symbol)
    if type(ev) is FundingPaid:
        return _funding(ev, spec, synthetic_exec_id(seq, index))
    return _closing(ev, spec, events, index, seq)


def risk_executions(
    seq: int, events: Sequence[Event], specs: Mapping[str, InstrumentSpec]
) -> list[OrderEvent]:
    """The execution rows of one command's risk events, in event order."""
    out: list[OrderEvent] = []
    for index, ev in enumerate(events):
        if type(ev) in RISK_EXECUTION_EVENTS:
            row = risk_execution(seq, events, index, specs)
            if row is not None:
                out.append(row)
    return out


def _closing(
    ev: object, spec: InstrumentSpec | None, events: Sequence[Event], index: int, seq: int
) -> OrderEvent | None:
    exec_id = synthetic_exec_id(seq, index)
    fee_rate_ppm = 0
    if type(ev) is PositionLiquidated:
        change, price, fee = -ev.qty, ev.price, ev.fee
        exec_type = EXEC_TYPE_BANKRUPTCY if _covered(events, index) else EXEC_TYPE_LIQUIDATION
        cost = contract_value(spec, change, price) if spec is not None else 0
        text = "Liquidation"
    elif type(ev) is Deleveraged:
        change, price, fee = ev.qty, ev.price, 0
        exec_type = EXEC_TYPE_DELEVERAGE
        cost = contract_value(spec, change, price) if spec is not None else 0
        text = "Deleverage"
    elif type(ev) is PositionSettled:
        change, price, fee = -ev.qty, _nearest_tick(ev.price_fine), ev.fee
        fee_rate_ppm = spec.settlement_fee_ppm if spec is not None else 0
        exec_type = int(ExecType.SETTLEMENT)
        cost = (
            contract_value_at(
                spec, change, ev.price_fine * spec.tick_num, spec.tick_den * PRICE_FINE_PER_TICK
            )
            if spec is not None
            else 0
        )
        text = "Settlement"
    else:
        return None
    if change == 0:
        return None
    side = _BUY if change > 0 else _SELL
    return _row(
        ev.ts_ns,
        exec_type,
        exec_id,
        ev.account,
        ev.symbol,
        side,
        change,
        price,
        cost,
        fee,
        fee_rate_ppm,
        text,
    )


def funding_row_of(ev: Funding, seq: int) -> Row:
    """``funding``: the rate paid at this funding time (ppb, exact)."""
    return funding_row(ev.ts_ns, ev.symbol, ev.interval_ns, ev.rate_ppb, FUNDING_RATE_DEN, seq)


def settlement_row_of(ev: Settled, spec: InstrumentSpec, seq: int) -> Row:
    """``settlement``: the settled price as an exact rational (the TWAP is finer than ticks)."""
    num = ev.price_fine * spec.tick_num
    den = spec.tick_den * PRICE_FINE_PER_TICK
    divisor = gcd(num, den) or 1
    return settlement_row(
        ev.ts_ns,
        ev.symbol,
        ev.settlement_type,
        num // divisor,
        den // divisor,
        0,
        0,
        spec.settlement_fee_ppm,
        seq,
    )


def liquidation_row_of(ev: OrderEvent, seq: int) -> Row | None:
    """``liquidations``: the liquidation engine's (insurance fund's) order after ``ev``."""
    if ev.account != INSURANCE or ev.price is None:
        return None
    return liquidation_row(
        ev.ts_ns,
        ev.order_id,
        ev.symbol,
        int(ev.side),
        ev.price,
        ev.leaves_qty,
        int(ev.ord_status) in _OPEN,
        seq,
    )
