"""BitMEX ``Order`` and ``Execution`` rows built from the core's ``OrderEvent``.

Every money field is an int in settlement minor units, every price an exact decimal from ticks
(``avgPx`` is the exact average rounded to 8 decimals), every id a UUID from ``ids``.
"""

from decimal import Decimal
from typing import Any

from perpetua.core.enums import ExecType
from perpetua.core.events import OrderEvent
from perpetua.core.instruments import InstrumentSpec, home_notional
from perpetua.core.units import PPM
from perpetua.marketdata.ids import ZERO_UUID, exec_uuid, order_uuid, trade_uuid, transact_uuid
from perpetua.wire.values import JsonRow, iso_ms, price, rational
from perpetua.wire.vocabulary import (
    CONTINGENCY_NAMES,
    EXEC_TYPE_FUNDING,
    EXEC_TYPE_NAMES,
    EXEC_TYPE_TRADE,
    EXEC_TYPES_WITHOUT_ORDER,
    LIQUIDITY_NAMES,
    ORD_STATUS_NAMES,
    ORD_TYPE_NAMES,
    PEG_NAMES,
    SIDE_NAMES,
    TIF_NAMES,
    exec_inst_text,
)

__all__ = ["execution_row", "order_row", "transaction_row"]

_NOTIONAL_QUANTUM = Decimal("1e-8")
# rows whose ``commission`` is a rate too: the funding rate paid, the settlement fee charged
_RATE_ROWS = frozenset({EXEC_TYPE_FUNDING, int(ExecType.SETTLEMENT)})


def _avg_px(spec: InstrumentSpec, event: OrderEvent) -> Decimal | None:
    if event.cum_qty <= 0:
        return None
    return rational(event.cum_px_qty * spec.tick_num, event.cum_qty * spec.tick_den)


def order_row(event: OrderEvent, spec: InstrumentSpec) -> JsonRow:
    """The order as BitMEX's ``Order`` model after this event."""
    return {
        "orderID": order_uuid(event.order_id) if event.order_id else ZERO_UUID,
        "clOrdID": event.cl_ord_id,
        "clOrdLinkID": event.cl_ord_link_id,
        "account": event.account,
        "symbol": event.symbol,
        "side": SIDE_NAMES.get(event.side, ""),
        "orderQty": event.order_qty,
        "price": price(spec, event.price),
        "displayQty": event.display_qty,
        "stopPx": price(spec, event.stop_px),
        "pegOffsetValue": price(spec, event.peg_offset),
        "pegPriceType": PEG_NAMES.get(event.peg_price_type, ""),
        "currency": spec.quote_currency,
        "settlCurrency": spec.settl_currency,
        "ordType": ORD_TYPE_NAMES.get(event.ord_type, ""),
        "timeInForce": TIF_NAMES.get(event.time_in_force, ""),
        "execInst": exec_inst_text(event.exec_inst),
        "contingencyType": CONTINGENCY_NAMES.get(event.contingency_type, ""),
        "ordStatus": ORD_STATUS_NAMES.get(event.ord_status, ""),
        "triggered": "StopOrderTriggered" if event.triggered else "",
        "workingIndicator": event.working,
        "ordRejReason": "",
        "leavesQty": event.leaves_qty,
        "cumQty": event.cum_qty,
        "avgPx": _avg_px(spec, event),
        "text": event.text,
        "transactTime": iso_ms(event.transact_ts_ns),
        "timestamp": iso_ms(event.ts_ns),
    }


def _notionals(spec: InstrumentSpec, event: OrderEvent) -> tuple[Decimal | None, Decimal | None]:
    if (
        event.last_px is None
        or event.last_qty <= 0
        or event.side == 0
        or (event.exec_type != EXEC_TYPE_TRADE and event.exec_type not in EXEC_TYPES_WITHOUT_ORDER)
    ):
        return None, None
    num, den = home_notional(spec, event.last_qty * event.side, event.last_px)
    home = (Decimal(num) / Decimal(den)).quantize(_NOTIONAL_QUANTUM).normalize()
    px = price(spec, event.last_px) or Decimal(0)
    foreign = (-home * px).quantize(_NOTIONAL_QUANTUM).normalize()
    return home, foreign


def execution_row(event: OrderEvent, spec: InstrumentSpec) -> JsonRow:
    """The order row plus BitMEX's execution fields."""
    row = order_row(event, spec)
    home, foreign = _notionals(spec, event)
    is_trade = event.exec_type == EXEC_TYPE_TRADE
    if event.exec_type in EXEC_TYPES_WITHOUT_ORDER:
        row["ordType"] = EXEC_TYPE_NAMES[event.exec_type]
        row["orderQty"] = row["leavesQty"] = row["cumQty"] = None
    row.update(
        {
            "execID": exec_uuid(event.exec_id),
            "execType": EXEC_TYPE_NAMES.get(event.exec_type, ""),
            "lastQty": event.last_qty,
            "lastPx": price(spec, event.last_px),
            "lastLiquidityInd": LIQUIDITY_NAMES.get(event.liquidity, ""),
            "trdMatchID": trade_uuid(event.trd_match_id) if is_trade else ZERO_UUID,
            "commission": (Decimal(event.fee_rate_ppm) / Decimal(PPM)).normalize()
            if is_trade or event.exec_type in _RATE_ROWS
            else None,
            "feeType": ("Maker" if event.liquidity == 1 else "Taker") if is_trade else "",
            "tradePublishIndicator": "PublishTrade" if is_trade else "",
            "execCost": event.exec_cost,
            "execComm": event.exec_comm,
            "homeNotional": home,
            "foreignNotional": foreign,
            "underlyingLastPx": None,
            "lastMkt": "XBME" if is_trade else "",
            "exDestination": "XBME",
            "multiLegReportingType": "SingleSecurity",
        }
    )
    return row


def transaction_row(row: Any) -> JsonRow:
    """BitMEX ``Transaction`` from a ``transactions`` read-model row."""
    return {
        "transactID": transact_uuid(row.transact_id),
        "account": row.account,
        "currency": row.currency,
        "network": row.network,
        "transactType": row.transact_type,
        "amount": row.amount,
        "fee": row.fee,
        "transactStatus": row.transact_status,
        "address": row.address,
        "tx": row.tx,
        "text": row.text,
        "transactTime": iso_ms(row.transact_ts_ns),
        "timestamp": iso_ms(row.timestamp_ns),
        "walletBalance": row.wallet_balance,
        "marginBalance": None,
    }
