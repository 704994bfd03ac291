"""Per-account views fed by the event stream: orders, executions, positions, wallets.

They serve the private WebSocket tables (partials need current state) and the private REST
tables when no read-model store answers. Retention is bounded: every open order, plus the most
recent ``TERMINAL_ORDERS_RETAINED_MAX`` ended ones, ``EXECUTIONS_RETAINED_MAX`` executions and
``TRANSACTIONS_RETAINED_MAX`` wallet entries per account; deeper history is the store's job.

Margin figures: wallet balances, realised PnL and position costs are exact (from ``Transfer``
and ``PositionChanged`` events). Until the risk engine publishes margins, ``initMargin`` and
``maintMargin`` are estimates from the instrument's base rates, and ``unrealisedPnl`` uses the
mark this process knows (the reference index, else the last price).
"""

from collections import OrderedDict, deque
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from perpetua.core.events import (
    DepositCredited,
    OrderEvent,
    PositionChanged,
    Transfer,
    WithdrawalUpdated,
)
from perpetua.core.instruments import InstrumentSpec, contract_value, contract_value_at
from perpetua.core.units import CURRENCIES, PPM
from perpetua.gateway.rows import execution_row, order_row
from perpetua.gateway.vocabulary import ORD_STATUS_TERMINAL, TRANSFER_CODE_NAMES
from perpetua.marketdata.hub import MarketData
from perpetua.marketdata.wire import iso_ms, rational

__all__ = ["PrivateDelta", "PrivateViews"]

TERMINAL_ORDERS_RETAINED_MAX = 1_000
EXECUTIONS_RETAINED_MAX = 10_000
TRANSACTIONS_RETAINED_MAX = 10_000
_ZERO = Decimal(0)


class PrivateDelta(NamedTuple):
    table: str
    account: int
    symbol: str
    action: str
    rows: list[dict[str, Any]]


class _Wallet:
    __slots__ = ("amount", "deposited", "withdrawn", "transfer_in", "transfer_out",
                 "pending_debit", "realised", "ts_ns")

    def __init__(self) -> None:
        self.amount = 0
        self.deposited = 0
        self.withdrawn = 0
        self.transfer_in = 0
        self.transfer_out = 0
        self.pending_debit = 0
        self.realised = 0
        self.ts_ns = 0


class _Position:
    __slots__ = ("qty", "cost", "realised", "ts_ns")

    def __init__(self) -> None:
        self.qty = 0
        self.cost = 0
        self.realised = 0
        self.ts_ns = 0


class PrivateViews:
    def __init__(self, market: MarketData) -> None:
        self.market = market
        self.specs = market.specs
        self.open_orders: dict[int, dict[int, dict[str, Any]]] = {}
        self.ended_orders: dict[int, OrderedDict[int, dict[str, Any]]] = {}
        self.executions: dict[int, deque[dict[str, Any]]] = {}
        self.positions: dict[int, dict[str, _Position]] = {}
        self.wallets: dict[int, dict[str, _Wallet]] = {}
        self.transactions: dict[int, deque[dict[str, Any]]] = {}
        self.wanted_accounts: set[int] = set()  # accounts with a private WS subscriber

    # Applying events ---------------------------------------------------------------------------

    def apply(self, seq: int, ts_ns: int, events: Sequence[object]) -> list[PrivateDelta]:
        out: list[PrivateDelta] = []
        margin_touched: set[tuple[int, str]] = set()
        for event in events:
            kind = type(event)
            if kind is OrderEvent:
                self._order(event, out)  # type: ignore[arg-type]
            elif kind is Transfer:
                self._transfer(seq, event, out, margin_touched)  # type: ignore[arg-type]
            elif kind is PositionChanged:
                self._position(event, out, margin_touched)  # type: ignore[arg-type]
            elif kind in (DepositCredited, WithdrawalUpdated):
                pass  # their money moves arrive as Transfer events
        for account, currency in sorted(margin_touched):
            if account in self.wanted_accounts:
                out.append(PrivateDelta("margin", account, "", "update",
                                        [self.margin_row(account, currency)]))
        return out

    def _order(self, event: OrderEvent, out: list[PrivateDelta]) -> None:
        spec = self.specs.get(event.symbol)
        if spec is None:
            return
        row = order_row(event, spec)
        account = event.account
        live = self.open_orders.setdefault(account, {})
        is_new = event.order_id not in live
        if row["ordStatus"] in ORD_STATUS_TERMINAL:
            live.pop(event.order_id, None)
            ended = self.ended_orders.setdefault(account, OrderedDict())
            ended[event.order_id] = row
            ended.move_to_end(event.order_id)
            while len(ended) > TERMINAL_ORDERS_RETAINED_MAX:
                ended.popitem(last=False)
        else:
            live[event.order_id] = row
        execution = execution_row(event, spec)
        self.executions.setdefault(account, deque(maxlen=EXECUTIONS_RETAINED_MAX)).append(
            execution)
        if account in self.wanted_accounts:
            action = "insert" if is_new and row["ordStatus"] == "New" else "update"
            out.append(PrivateDelta("order", account, event.symbol, action, [row]))
            out.append(PrivateDelta("execution", account, event.symbol, "insert", [execution]))

    def _wallet(self, account: int, currency: str) -> _Wallet:
        return self.wallets.setdefault(account, {}).setdefault(currency, _Wallet())

    def _transfer(self, seq: int, event: Transfer, out: list[PrivateDelta],
                  touched: set[tuple[int, str]]) -> None:
        for account, sign in ((event.credit_account, 1), (event.debit_account, -1)):
            if account <= 0:
                continue
            wallet = self._wallet(account, event.currency)
            wallet.amount += sign * event.amount
            wallet.ts_ns = event.ts_ns
            name = TRANSFER_CODE_NAMES.get(event.code, "Transfer")
            if name == "Deposit":
                wallet.deposited += event.amount
            elif name == "Withdrawal":
                wallet.withdrawn += event.amount if sign < 0 else 0
            elif name == "RealisedPNL":
                wallet.realised += sign * event.amount
            row = {
                "transactID": f"{seq:016x}-{event.code:04x}-{event.ref & 0xFFFFFFFFFFFF:012x}",
                "account": account,
                "currency": event.currency,
                "network": "",
                "transactType": name,
                "amount": sign * event.amount,
                "fee": 0,
                "transactStatus": "Completed",
                "address": "",
                "tx": "",
                "text": "",
                "transactTime": iso_ms(event.ts_ns),
                "timestamp": iso_ms(event.ts_ns),
                "walletBalance": wallet.amount,
            }
            self.transactions.setdefault(account, deque(maxlen=TRANSACTIONS_RETAINED_MAX)).append(
                row)
            touched.add((account, event.currency))
            if account in self.wanted_accounts:
                out.append(PrivateDelta("transact", account, "", "insert", [row]))
                out.append(PrivateDelta("wallet", account, "", "update",
                                        [self.wallet_row(account, event.currency)]))

    def _position(self, event: PositionChanged, out: list[PrivateDelta],
                  touched: set[tuple[int, str]]) -> None:
        spec = self.specs.get(event.symbol)
        if spec is None:
            return
        pos = self.positions.setdefault(event.account, {}).setdefault(event.symbol, _Position())
        pos.qty = event.current_qty
        pos.cost = event.current_cost
        pos.realised = event.realised_pnl
        pos.ts_ns = event.ts_ns
        touched.add((event.account, spec.settl_currency))
        if event.account in self.wanted_accounts:
            out.append(PrivateDelta("position", event.account, event.symbol, "update",
                                    [self.position_row(event.account, event.symbol)]))

    # Rows ---------------------------------------------------------------------------------------

    def orders(self, account: int) -> list[dict[str, Any]]:
        ended = list(self.ended_orders.get(account, {}).values())
        live = list(self.open_orders.get(account, {}).values())
        return sorted(ended + live, key=lambda r: r["timestamp"])

    def _mark(self, spec: InstrumentSpec) -> tuple[int, int] | None:
        stats = self.market.stats[spec.symbol]
        if stats.index is not None:
            num, den = stats.index
            return num, den
        if stats.last_ticks is not None:
            return stats.last_ticks * spec.tick_num, spec.tick_den
        return None

    def position_row(self, account: int, symbol: str) -> dict[str, Any]:
        spec = self.specs[symbol]
        pos = self.positions.get(account, {}).get(symbol) or _Position()
        mark = self._mark(spec)
        mark_value = contract_value_at(spec, pos.qty, *mark) if mark and pos.qty else 0
        im = Decimal(spec.init_margin_ppm) / PPM
        mm = Decimal(spec.maint_margin_ppm) / PPM
        pos_init = abs(pos.cost) * spec.init_margin_ppm // PPM
        avg_entry = None
        if pos.qty and pos.cost:
            if spec.is_inverse:
                avg_entry = rational(abs(pos.qty * spec.multiplier), abs(pos.cost))
            else:
                avg_entry = rational(abs(pos.cost), abs(pos.qty * spec.multiplier))
        home = None
        if pos.qty and mark:
            home = Decimal(pos.qty) if spec.is_inverse else Decimal(pos.qty) / Decimal(
                spec.underlying_to_position_multiplier or 1)
        return {
            "account": account, "symbol": symbol, "currency": spec.settl_currency,
            "underlying": spec.underlying, "quoteCurrency": spec.quote_currency,
            "commission": (Decimal(spec.taker_fee_ppm) / PPM).normalize(),
            "initMarginReq": im.normalize(), "maintMarginReq": mm.normalize(),
            "riskLimit": spec.risk_limit, "leverage": (1 / im).normalize() if im else None,
            "crossMargin": True, "deleveragePercentile": None,
            "currentQty": pos.qty, "currentCost": pos.cost, "realisedPnl": pos.realised,
            "unrealisedCost": pos.cost, "posCost": pos.cost, "posInit": pos_init,
            "posComm": 0, "posMargin": pos_init, "posMaint": abs(pos.cost) *
            spec.maint_margin_ppm // PPM, "maintMargin": pos_init + mark_value - pos.cost
            if pos.qty else 0,
            "markPrice": rational(*mark) if mark else None, "markValue": mark_value,
            "unrealisedPnl": mark_value - pos.cost if pos.qty else 0,
            "homeNotional": home, "foreignNotional": None,
            "avgEntryPrice": avg_entry, "avgCostPrice": avg_entry,
            "isOpen": pos.qty != 0, "liquidationPrice": None, "bankruptPrice": None,
            "timestamp": iso_ms(pos.ts_ns or self.market.ts_ns),
        }

    def position_rows(self, account: int) -> list[dict[str, Any]]:
        return [self.position_row(account, s) for s in sorted(self.positions.get(account, {}))]

    def wallet_row(self, account: int, currency: str) -> dict[str, Any]:
        wallet = self.wallets.get(account, {}).get(currency) or _Wallet()
        return {
            "account": account, "currency": currency, "deposited": wallet.deposited,
            "withdrawn": wallet.withdrawn, "transferIn": wallet.transfer_in,
            "transferOut": wallet.transfer_out, "amount": wallet.amount,
            "pendingCredit": 0, "pendingDebit": wallet.pending_debit, "confirmedDebit": 0,
            "timestamp": iso_ms(wallet.ts_ns or self.market.ts_ns),
        }

    def currencies(self, account: int) -> list[str]:
        held = self.wallets.get(account, {})
        return [code for code in CURRENCIES if code in held] or ["XBt"]

    def margin_row(self, account: int, currency: str) -> dict[str, Any]:
        wallet = self.wallets.get(account, {}).get(currency) or _Wallet()
        unrealised = 0
        maint = 0
        for symbol in self.positions.get(account, {}):
            spec = self.specs[symbol]
            if spec.settl_currency == currency:
                row = self.position_row(account, symbol)
                unrealised += row["unrealisedPnl"]
                maint += row["posMargin"]
        init = 0
        for order in self.open_orders.get(account, {}).values():
            spec = self.specs[order["symbol"]]
            if spec.settl_currency == currency and spec.is_derivative and order["price"]:
                ticks = int(order["price"] * spec.tick_den / spec.tick_num)
                value = abs(contract_value(spec, order["leavesQty"], ticks))
                init += value * spec.init_margin_ppm // PPM
        balance = wallet.amount + unrealised
        available = balance - init - maint
        return {
            "account": account, "currency": currency, "riskLimit": 0, "state": "",
            "amount": wallet.amount, "prevRealisedPnl": 0, "grossComm": 0,
            "grossOpenCost": init, "grossOpenPremium": 0, "grossExecCost": 0,
            "grossMarkValue": 0, "riskValue": init + maint, "initMargin": init,
            "maintMargin": maint, "targetExcessMargin": 0, "realisedPnl": wallet.realised,
            "unrealisedPnl": unrealised, "walletBalance": wallet.amount,
            "marginBalance": balance, "marginLeverage": _ZERO, "marginUsedPcnt": (
                (Decimal(init + maint) / balance).quantize(Decimal("1e-4")) if balance > 0
                else _ZERO),
            "excessMargin": available, "availableMargin": available,
            "withdrawableMargin": max(0, min(available, wallet.amount)),
            "makerFeeDiscount": _ZERO, "takerFeeDiscount": _ZERO,
            "timestamp": iso_ms(wallet.ts_ns or self.market.ts_ns),
        }
