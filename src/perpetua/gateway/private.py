"""Per-account views fed by the event stream: open orders, positions, wallets, recent history.

They hold what the private WebSocket tables and the live REST routes (``/position``,
``/user/margin``, ``/user/wallet``) need: every open order, the latest ``PositionChanged`` of
each position, wallet balances, and a short tail of recent orders and executions (WebSocket
partials). History is served from the read models (``gateway.history``).

Wallets and wallet history fold through ``wire.wallet.WalletFold``, the read models' own fold,
so a WebSocket ``transact`` row is the ``/user/walletHistory`` row of the same id; the rows of
a command are made only if one of its accounts has a subscriber (``deferred``).

Views keep the core's events and format BitMEX rows only when asked (a subscriber, a REST read),
so the order path pays nothing for them. ``account_seq`` is the last seq that touched each
account: a history read waits until the read models have projected it (read your writes).

Start-up: ``seed`` loads open orders, positions, wallets and the pending withdrawals' wallet
history rows from the read models once the projector has caught up to the recovered seq (see
``gateway.bootstrap``): these views are folds of the same events the projector folds, so both
give the same state.
"""

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Row

from perpetua.core.events import (
    DeleverageRanked,
    DepositCredited,
    Event,
    FeeSettingsChanged,
    OrderEvent,
    OrderMarginChanged,
    PositionChanged,
    StakingChanged,
    Transfer,
    UnstakingUpdated,
    WithdrawalUpdated,
)
from perpetua.core.instruments import InstrumentKind, InstrumentSpec
from perpetua.core.units import CURRENCIES
from perpetua.gateway.costs import CostViews
from perpetua.gateway.positions import (
    MarginInputs,
    available_margin,
    flat_position,
    margin_row,
    position_row,
)
from perpetua.gateway.rows import execution_row, order_row, transaction_row
from perpetua.marketdata.hub import MarketData
from perpetua.store.risk_rows import RISK_EXECUTION_EVENTS, risk_executions
from perpetua.store.rows import is_orders_only
from perpetua.wire.values import JsonRow, iso_ms
from perpetua.wire.vocabulary import ORD_STATUS_TERMINAL_VALUES
from perpetua.wire.wallet import WALLET_FIELDS, TransactRow, WalletFold, WalletTotals

__all__ = ["ENDED_ORDERS_RETAINED_MAX", "PrivateDelta", "PrivateViews"]

ENDED_ORDERS_RETAINED_MAX = 100  # per account: clOrdID lookups and cancel-reject rows
EXECUTIONS_RETAINED_MAX = 100  # per account: WebSocket partials (history is in the read models)


class PrivateDelta(NamedTuple):
    table: str
    account: int
    symbol: str
    action: str
    rows: list[JsonRow]


class _Fold:
    """What folding one command's events gathers: deltas, wallets touched, risk events seen."""

    __slots__ = ("out", "risk", "seq", "touched", "wallets")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.out: list[PrivateDelta] = []
        self.touched: dict[tuple[int, str], None] = {}  # margin rows to send
        self.wallets: dict[tuple[int, str], None] | None = None  # wallet rows to send
        self.risk = False

    def send_wallet(self, account: int, currency: str) -> None:
        if self.wallets is None:
            self.wallets = {}
        self.wallets[(account, currency)] = None


class PrivateViews:
    def __init__(self, market: MarketData) -> None:
        self.market = market
        self.specs = market.specs
        self.executions_max = EXECUTIONS_RETAINED_MAX
        self.ended_max = ENDED_ORDERS_RETAINED_MAX
        self.open_orders: dict[int, dict[int, OrderEvent]] = {}
        self.ended_orders: dict[int, OrderedDict[int, OrderEvent]] = {}
        self.executions: dict[int, deque[OrderEvent]] = {}
        self.positions: dict[int, dict[str, PositionChanged]] = {}
        # account -> symbol -> the working orders' margin (PositionChanged, OrderMarginChanged)
        self.order_margins: dict[int, dict[str, int]] = {}
        # symbol -> account -> ADL quintile (the last DeleverageRanked; a closed one dropped)
        self.quintiles: dict[str, dict[int, int]] = {}
        self.wallets: dict[int, dict[str, WalletTotals]] = {}  # system accounts' too
        self.wallet_fold = WalletFold(self._wallet, deferred=True)  # rows for subscribers
        self.spot_symbols = frozenset(
            symbol for symbol, spec in self.specs.items() if spec.kind == InstrumentKind.SPOT
        )
        self.account_seq: dict[int, int] = {}
        self.wanted_accounts: set[int] = set()  # accounts with a private WS subscriber
        self.costs = CostViews()  # fee tier and discount, stakes, unstaking requests

    # Applying events ---------------------------------------------------------------------------

    def apply(self, seq: int, ts_ns: int, events: Sequence[Event]) -> list[PrivateDelta]:
        """Fold one command's events (each through its entry in ``_HANDLERS``), then the
        risk engine's executions, the wallet history rows and the wallet and margin rows of
        the wallets it touched."""
        fold = _Fold(seq)
        wallet_fold = self.wallet_fold
        wallet_fold.begin_command(seq, events, self.spot_symbols)
        handlers = _HANDLERS
        for index, event in enumerate(events):
            handler = handlers.get(type(event))
            if handler is not None:
                handler(self, fold, index, event)
        out = fold.out
        wanted = self.wanted_accounts
        wallet_fold.finish_command(wanted)
        if wallet_fold.changes:
            for change in wallet_fold.take_changes():
                made = change.row
                if made.account in wanted:
                    out.append(
                        PrivateDelta(
                            "transact", made.account, "", change.action, [transaction_row(made)]
                        )
                    )
        if wallet_fold.unmatched:
            wallet_fold.unmatched.clear()  # requested before the seed held its row
        if fold.wallets is not None:
            for account, currency in fold.wallets:
                out.append(
                    PrivateDelta(
                        "wallet", account, "", "update", [self.wallet_row(account, currency)]
                    )
                )
        if fold.risk:
            for row in risk_executions(seq, events, self.specs):
                self._execution(row, out, wanted)
        for account, currency in fold.touched:
            if account in wanted:
                out.append(
                    PrivateDelta(
                        "margin", account, "", "update", [self.margin_row(account, currency)]
                    )
                )
        return out

    def on_mark(self, symbol: str) -> list[PrivateDelta]:
        """A mark moved: subscribers holding ``symbol`` get their position and margin anew."""
        out: list[PrivateDelta] = []
        spec = self.specs.get(symbol)
        if spec is None:
            return out
        for account in sorted(self.wanted_accounts):
            held = self.positions.get(account, {}).get(symbol)
            if held is None or not held.current_qty:
                continue
            out.append(
                PrivateDelta(
                    "position", account, symbol, "update", [self.position_row(account, symbol)]
                )
            )
            out.append(
                PrivateDelta(
                    "margin", account, "", "update", [self.margin_row(account, spec.settl_currency)]
                )
            )
        return out

    def _order(self, event: OrderEvent, out: list[PrivateDelta], wanted: set[int]) -> None:
        account = event.account
        live = self.open_orders.get(account)
        if live is None:
            live = self.open_orders[account] = {}
        is_new = event.order_id not in live
        if event.ord_status in ORD_STATUS_TERMINAL_VALUES:
            live.pop(event.order_id, None)
            ended = self.ended_orders.get(account)
            if ended is None:
                ended = self.ended_orders[account] = OrderedDict()
            ended[event.order_id] = event
            ended.move_to_end(event.order_id)
            if len(ended) > self.ended_max:
                ended.popitem(last=False)
        else:
            live[event.order_id] = event
        self._execution(event, None, wanted)
        if account in wanted:
            spec = self.specs.get(event.symbol)
            if spec is None:
                return
            row = order_row(event, spec)
            action = "insert" if is_new and row["ordStatus"] == "New" else "update"
            out.append(PrivateDelta("order", account, event.symbol, action, [row]))
            out.append(
                PrivateDelta(
                    "execution", account, event.symbol, "insert", [execution_row(event, spec)]
                )
            )

    def _execution(
        self, event: OrderEvent, out: list[PrivateDelta] | None, wanted: set[int]
    ) -> None:
        recent = self.executions.get(event.account)
        if recent is None:
            recent = self.executions[event.account] = deque(maxlen=self.executions_max)
        recent.append(event)
        if out is not None and event.account in wanted:
            spec = self.specs.get(event.symbol)
            if spec is not None:
                out.append(
                    PrivateDelta(
                        "execution",
                        event.account,
                        event.symbol,
                        "insert",
                        [execution_row(event, spec)],
                    )
                )

    def _wallet(self, account: int, currency: str) -> WalletTotals:
        held = self.wallets.get(account)
        if held is None:
            held = self.wallets[account] = {}
        wallet = held.get(currency)
        if wallet is None:
            wallet = held[currency] = WalletTotals(account, currency)
        return wallet

    def _transfer(self, fold: _Fold, event: Transfer) -> None:
        """Both wallets move and the wallet history folds (``wire.wallet.WalletFold``, the
        read models' fold): its rows go out when the command has folded."""
        for wallet in self.wallet_fold.on_transfer(event):
            account = wallet.account
            if account <= 0:
                continue
            self.account_seq[account] = fold.seq
            fold.touched[(account, event.currency)] = None
            if account in self.wanted_accounts:
                fold.send_wallet(account, event.currency)

    def _withdrawal(self, fold: _Fold, event: WithdrawalUpdated) -> None:
        self.wallet_fold.on_withdrawal(event)
        self.account_seq[event.account] = fold.seq
        fold.touched[(event.account, event.currency)] = None
        if event.account in self.wanted_accounts:
            fold.send_wallet(event.account, event.currency)

    def _position(
        self,
        seq: int,
        event: PositionChanged,
        out: list[PrivateDelta],
        touched: dict[tuple[int, str], None],
        wanted: set[int],
    ) -> None:
        spec = self.specs.get(event.symbol)
        if spec is None:
            return
        held = self.positions.get(event.account)
        if held is None:
            held = self.positions[event.account] = {}
        held[event.symbol] = event
        if event.account <= 0:
            return
        self._margin_of_orders(event.account, event.symbol, event.order_margin)
        if not event.current_qty:
            self.quintiles.get(event.symbol, {}).pop(event.account, None)
        self.account_seq[event.account] = seq
        touched[(event.account, spec.settl_currency)] = None
        if event.account in wanted:
            out.append(self._position_update(event.account, event.symbol))

    def _position_update(self, account: int, symbol: str) -> PrivateDelta:
        return PrivateDelta(
            "position", account, symbol, "update", [self.position_row(account, symbol)]
        )

    def _margin_of_orders(self, account: int, symbol: str, margin: int) -> None:
        held = self.order_margins.get(account)
        if held is None:
            held = self.order_margins[account] = {}
        if margin:
            held[symbol] = margin
        else:
            held.pop(symbol, None)

    def _order_margin(
        self,
        event: OrderMarginChanged,
        out: list[PrivateDelta],
        touched: dict[tuple[int, str], None],
    ) -> None:
        """The core's new figure for the working orders' margin (the position unchanged)."""
        spec = self.specs.get(event.symbol)
        if spec is None:
            return
        self._margin_of_orders(event.account, event.symbol, event.order_margin)
        touched[(event.account, spec.settl_currency)] = None
        if event.account in self.wanted_accounts and event.symbol in self.positions.get(
            event.account, {}
        ):
            out.append(self._position_update(event.account, event.symbol))

    # Start-up -----------------------------------------------------------------------------------

    def seed(
        self,
        open_orders: Iterable[OrderEvent],
        positions: Iterable[PositionChanged],
        wallets: Iterable[Row[Any]],
        withdrawals: Iterable[Row[Any]] = (),
        ranks: Iterable[DeleverageRanked] = (),
    ) -> None:
        """Load the views from the read models (rows in the ``wallets`` table's shape, and the
        pending withdrawals' wallet history rows, which their completion updates) and the
        engine's ADL ranking at the seed (``ranks``, until the next mark update re-ranks)."""
        for ranked in ranks:
            self.quintiles[ranked.symbol] = dict(
                zip(ranked.accounts, ranked.quintiles, strict=True)
            )
        for order in open_orders:
            self.open_orders.setdefault(order.account, {})[order.order_id] = order
        for position in positions:
            if position.account > 0:
                self._margin_of_orders(position.account, position.symbol, position.order_margin)
            if not is_orders_only(position):
                self.positions.setdefault(position.account, {})[position.symbol] = position
        for row in wallets:
            columns = row._mapping
            self.wallets.setdefault(row.account, {})[row.currency] = WalletTotals(
                *(columns[name] for name in WALLET_FIELDS)
            )
        for row in withdrawals:
            self.wallet_fold.pending[row.ref] = TransactRow.of(row._mapping)

    # Rows ---------------------------------------------------------------------------------------

    def order_rows(self, account: int) -> list[JsonRow]:
        events = [
            *self.ended_orders.get(account, {}).values(),
            *self.open_orders.get(account, {}).values(),
        ]
        events.sort(key=lambda e: (e.ts_ns, e.order_id))
        return [order_row(e, self.specs[e.symbol]) for e in events if e.symbol in self.specs]

    def open_order_rows(self, account: int) -> list[JsonRow]:
        return [
            order_row(e, self.specs[e.symbol])
            for e in self.open_orders.get(account, {}).values()
            if e.symbol in self.specs
        ]

    def execution_rows(self, account: int, last: int | None = None) -> list[JsonRow]:
        events = list(self.executions.get(account, ()))
        if last is not None:
            events = events[-last:]
        return [execution_row(e, self.specs[e.symbol]) for e in events if e.symbol in self.specs]

    def _orders_on(self, account: int, symbol: str) -> list[OrderEvent]:
        return [o for o in self.open_orders.get(account, {}).values() if o.symbol == symbol]

    def position_event(self, account: int, symbol: str) -> PositionChanged:
        found = self.positions.get(account, {}).get(symbol)
        return (
            found
            if found is not None
            else flat_position(self.specs[symbol], account, self.market.ts_ns)
        )

    def position_row(
        self, account: int, symbol: str, event: PositionChanged | None = None
    ) -> JsonRow:
        """``account``'s ``symbol`` position: ``event`` (a command's answer) or the latest."""
        spec = self.specs[symbol]
        if event is None:
            ev = self.position_event(account, symbol)
            margin = self.order_margins.get(account, {}).get(symbol, 0)
        else:
            ev, margin = event, event.order_margin
        return position_row(
            spec,
            ev,
            self.market.mark_fine(symbol),
            self._orders_on(account, symbol),
            margin,
            self.quintiles.get(symbol, {}).get(account) if ev.current_qty else None,
        )

    def position_rows(self, account: int) -> list[JsonRow]:
        held = self.positions.get(account, {})
        return [self.position_row(account, s) for s in sorted(held) if s in self.specs]

    def wallet_row(self, account: int, currency: str) -> JsonRow:
        wallet = self.wallets.get(account, {}).get(currency) or WalletTotals(account, currency)
        return {
            "account": account,
            "currency": currency,
            "deposited": wallet.deposited,
            "withdrawn": wallet.withdrawn,
            "transferIn": wallet.transfer_in,
            "transferOut": wallet.transfer_out,
            "amount": wallet.amount,
            "pendingCredit": wallet.pending_credit,
            "pendingDebit": wallet.pending_debit,
            "confirmedDebit": wallet.confirmed_debit,
            "timestamp": iso_ms(wallet.timestamp_ns or self.market.ts_ns),
        }

    def currencies(self, account: int) -> list[str]:
        held = self.wallets.get(account, {})
        return [code for code in CURRENCIES if code in held] or ["XBt"]

    def margin_inputs(self, account: int, currency: str) -> MarginInputs:
        wallet = self.wallets.get(account, {}).get(currency) or WalletTotals(account, currency)
        inputs = MarginInputs(wallet.amount, wallet.timestamp_ns or self.market.ts_ns)
        market = self.market
        held = self.positions.get(account, {})
        margins = self.order_margins.get(account, {})
        for symbol in {**held, **margins}:
            spec = self.specs.get(symbol)
            if spec is None or spec.settl_currency != currency or not spec.is_derivative:
                continue
            event = held.get(symbol)
            if event is not None:
                inputs.add_position(spec, event, market.mark_fine(symbol))
            inputs.add_orders(spec, self._orders_on(account, symbol), margins.get(symbol, 0))
        for order in self.open_orders.get(account, {}).values():
            spec = self.specs.get(order.symbol)
            if (
                spec is not None
                and spec.kind == InstrumentKind.SPOT
                and currency == (spec.settl_currency if order.side > 0 else spec.base_currency)
            ):
                inputs.add_spot_hold(spec, order)
        return inputs

    def margin_row(self, account: int, currency: str) -> JsonRow:
        return margin_row(account, currency, self.margin_inputs(account, currency))

    def balance(self, account: int, currency: str) -> int:
        """The wallet's ``amount`` (the ledger balance) in ``currency``."""
        wallet = self.wallets.get(account, {}).get(currency)
        return 0 if wallet is None else wallet.amount

    def available_margin(self, account: int, currency: str) -> int:
        """``availableMargin`` of the ``Margin`` row, as an int."""
        return available_margin(self.margin_inputs(account, currency))

    def spec_of_order(
        self, account: int, order_id: int | None, cl_ord_id: str
    ) -> tuple[int | None, InstrumentSpec | None]:
        """(order id, instrument) of one of the account's recent orders, live first."""
        for table in (self.open_orders.get(account, {}), self.ended_orders.get(account, {})):
            if order_id is not None and order_id in table:
                return order_id, self.specs.get(table[order_id].symbol)
            if order_id is None and cl_ord_id:
                for oid, event in table.items():
                    if event.cl_ord_id == cl_ord_id:
                        return oid, self.specs.get(event.symbol)
        return order_id, None

    def ended_order(self, account: int, order_id: int, cl_ord_id: str) -> OrderEvent | None:
        ended: dict[int, OrderEvent] = self.ended_orders.get(account, {})
        if order_id and order_id in ended:
            return ended[order_id]
        if cl_ord_id:
            for event in ended.values():
                if event.cl_ord_id == cl_ord_id:
                    return event
        return None


# --- the handler table: one entry per event kind that changes a private view ----------------


def _on_order(views: PrivateViews, fold: _Fold, index: int, event: OrderEvent) -> None:
    views.account_seq[event.account] = fold.seq
    views._order(event, fold.out, views.wanted_accounts)


def _on_transfer(views: PrivateViews, fold: _Fold, index: int, event: Transfer) -> None:
    views._transfer(fold, event)


def _on_position(views: PrivateViews, fold: _Fold, index: int, event: PositionChanged) -> None:
    views._position(fold.seq, event, fold.out, fold.touched, views.wanted_accounts)


def _on_order_margin(
    views: PrivateViews, fold: _Fold, index: int, event: OrderMarginChanged
) -> None:
    views._order_margin(event, fold.out, fold.touched)


def _on_ranked(views: PrivateViews, fold: _Fold, index: int, event: DeleverageRanked) -> None:
    views.quintiles[event.symbol] = dict(zip(event.accounts, event.quintiles, strict=True))


def _on_withdrawal(views: PrivateViews, fold: _Fold, index: int, event: WithdrawalUpdated) -> None:
    views._withdrawal(fold, event)


def _on_deposit(views: PrivateViews, fold: _Fold, index: int, event: DepositCredited) -> None:
    views.wallet_fold.on_deposit(event)
    views.account_seq[event.account] = fold.seq


def _on_fees(views: PrivateViews, fold: _Fold, index: int, event: FeeSettingsChanged) -> None:
    views.costs.on_fees(event)


def _on_stake(views: PrivateViews, fold: _Fold, index: int, event: StakingChanged) -> None:
    views.account_seq[event.account] = fold.seq
    views.costs.on_stake(event)


def _on_unstaking(views: PrivateViews, fold: _Fold, index: int, event: UnstakingUpdated) -> None:
    views.costs.on_unstaking(event)


def _on_risk(views: PrivateViews, fold: _Fold, index: int, event: object) -> None:
    fold.risk = True  # its executions are built once per command, after the fold


_HANDLERS: dict[type, Callable[[PrivateViews, _Fold, int, Any], None]] = {
    OrderEvent: _on_order,
    Transfer: _on_transfer,
    PositionChanged: _on_position,
    OrderMarginChanged: _on_order_margin,
    DeleverageRanked: _on_ranked,
    WithdrawalUpdated: _on_withdrawal,
    DepositCredited: _on_deposit,
    FeeSettingsChanged: _on_fees,
    StakingChanged: _on_stake,
    UnstakingUpdated: _on_unstaking,
    **{kind: _on_risk for kind in RISK_EXECUTION_EVENTS},
}
