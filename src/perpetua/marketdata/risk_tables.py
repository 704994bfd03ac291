"""The public tables of the risk engine: ``funding``, ``settlement``, ``insurance`` and
``liquidation``, kept from the event stream, and their BitMEX wire rows.

``funding`` and ``settlement`` are insert-only; ``insurance`` inserts the fund's balance per
currency after every command that moved it (transfers touching the insurance account, -3);
``liquidation`` is the liquidation engine's working orders (the insurance account's live
orders): insert when one is placed, update when it fills partly, delete when it ends. The
tables keep the last ``PUBLIC_ROWS_RETAINED_MAX`` rows (WebSocket partials); REST history
comes from the read models when there are some (the same wire functions format both).
"""

from collections import deque
from decimal import Decimal
from typing import Any

from perpetua.core.events import Funding, OrderEvent, Settled, Transfer
from perpetua.core.instruments import InstrumentSpec
from perpetua.core.ledger import INSURANCE
from perpetua.core.units import PPM, PRICE_FINE_PER_TICK
from perpetua.marketdata.ids import order_uuid
from perpetua.wire.values import interval_iso, iso_ms, price, rational
from perpetua.wire.vocabulary import ORD_STATUS_OPEN_VALUES

__all__ = [
    "PUBLIC_ROWS_RETAINED_MAX",
    "RiskTables",
    "funding_wire",
    "insurance_wire",
    "liquidation_wire",
    "settlement_wire",
]

PUBLIC_ROWS_RETAINED_MAX = 1_000
FUNDING_RATE_DEN = 1_000_000_000  # ppb
DAY_NS = 86_400 * 10**9
_SIDES = {1: "Buy", -1: "Sell"}
_OPEN = ORD_STATUS_OPEN_VALUES


def funding_wire(
    ts_ns: int, symbol: str, interval_ns: int, rate_num: int, rate_den: int
) -> dict[str, Any]:
    """BitMEX ``Funding``: the rate of one funding time; ``fundingRateDaily`` scales it to a day."""
    return {
        "timestamp": iso_ms(ts_ns),
        "symbol": symbol,
        "fundingInterval": interval_iso(interval_ns),
        "fundingRate": rational(rate_num, rate_den, 9),
        "fundingRateDaily": rational(rate_num * DAY_NS, rate_den * interval_ns, 9)
        if interval_ns > 0
        else None,
    }


def settlement_wire(
    ts_ns: int,
    symbol: str,
    settlement_type: str,
    price_num: int,
    price_den: int,
    bankrupt: int,
    tax_base: int,
    tax_rate_ppm: int,
) -> dict[str, Any]:
    return {
        "timestamp": iso_ms(ts_ns),
        "symbol": symbol,
        "settlementType": settlement_type,
        "settledPrice": rational(price_num, price_den),
        "optionStrikePrice": None,
        "optionUnderlyingPrice": None,
        "bankrupt": bankrupt,
        "taxBase": tax_base,
        "taxRate": (Decimal(tax_rate_ppm) / PPM).normalize(),
    }


def insurance_wire(currency: str, ts_ns: int, balance: int) -> dict[str, Any]:
    return {"currency": currency, "timestamp": iso_ms(ts_ns), "walletBalance": balance}


def liquidation_wire(
    spec: InstrumentSpec, order_id: int, side: int, price_ticks: int, leaves_qty: int
) -> dict[str, Any]:
    return {
        "orderID": order_uuid(order_id),
        "symbol": spec.symbol,
        "side": _SIDES.get(side, ""),
        "price": price(spec, price_ticks),
        "leavesQty": leaves_qty,
    }


class RiskTables:
    def __init__(self) -> None:
        self.funding: deque[dict[str, Any]] = deque(maxlen=PUBLIC_ROWS_RETAINED_MAX)
        self.settlement: deque[dict[str, Any]] = deque(maxlen=PUBLIC_ROWS_RETAINED_MAX)
        self.insurance: deque[dict[str, Any]] = deque(maxlen=PUBLIC_ROWS_RETAINED_MAX)
        self.insurance_balance: dict[str, int] = {}
        self.liquidation: dict[int, dict[str, Any]] = {}  # working liquidation orders by id
        self.table_seq: dict[str, int] = {}  # last seq that added to each table

    def on_funding(self, seq: int, ev: Funding) -> dict[str, Any]:
        row = funding_wire(ev.ts_ns, ev.symbol, ev.interval_ns, ev.rate_ppb, FUNDING_RATE_DEN)
        self.funding.append(row)
        self.table_seq["funding"] = seq
        return row

    def on_settled(self, seq: int, ev: Settled, spec: InstrumentSpec) -> dict[str, Any]:
        row = settlement_wire(
            ev.ts_ns,
            ev.symbol,
            ev.settlement_type,
            ev.price_fine * spec.tick_num,
            spec.tick_den * PRICE_FINE_PER_TICK,
            0,
            0,
            spec.settlement_fee_ppm,
        )
        self.settlement.append(row)
        self.table_seq["settlement"] = seq
        return row

    def on_transfer(self, seq: int, ev: Transfer) -> dict[str, Any] | None:
        if INSURANCE not in (ev.debit_account, ev.credit_account):
            return None
        sign = 1 if ev.credit_account == INSURANCE else -1
        balance = self.insurance_balance.get(ev.currency, 0) + sign * ev.amount
        self.insurance_balance[ev.currency] = balance
        row = insurance_wire(ev.currency, ev.ts_ns, balance)
        last = self.insurance[-1] if self.insurance else None
        if (
            last is not None
            and last["currency"] == ev.currency
            and (last["timestamp"] == row["timestamp"])
        ):
            self.insurance[-1] = row  # one row per currency and moment, as the read model
        else:
            self.insurance.append(row)
        self.table_seq["insurance"] = seq
        return row

    def on_order(
        self, seq: int, ev: OrderEvent, spec: InstrumentSpec
    ) -> tuple[str, dict[str, Any]] | None:
        """(action, row) of the liquidation table for one of the fund's order events."""
        if ev.account != INSURANCE or ev.price is None:
            return None
        self.table_seq["liquidation"] = seq
        row = liquidation_wire(spec, ev.order_id, ev.side, ev.price, ev.leaves_qty)
        known = ev.order_id in self.liquidation
        if ev.ord_status not in _OPEN:
            if not known:
                return None
            del self.liquidation[ev.order_id]
            return "delete", row
        self.liquidation[ev.order_id] = row
        return ("update" if known else "insert"), row

    def seed_liquidation(self, ev: OrderEvent, spec: InstrumentSpec) -> None:
        if ev.account == INSURANCE and ev.price is not None and ev.ord_status in _OPEN:
            self.liquidation[ev.order_id] = liquidation_wire(
                spec, ev.order_id, ev.side, ev.price, ev.leaves_qty
            )

    def seed_insurance(self, currency: str, ts_ns: int, balance: int) -> None:
        self.insurance_balance[currency] = balance
        self.insurance.append(insurance_wire(currency, ts_ns, balance))
