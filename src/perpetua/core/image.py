"""The core's state as plain data (ints, strings, bools, None, lists, dicts), and back.

``snapshot`` lists everything whose order matters in the order that matters: book queues in
priority order, stops in placement order, each account's clOrdID and terminated-order memory in
insertion order (their eviction is FIFO). Everything whose order does not matter is sorted, so
the same state always gives the same image, and ``state_hash`` (a SHA-256 of the image's
``repr``) is equal across machines and across a snapshot/restore round trip. Enum values are
stored as plain ints.
"""

import hashlib
from enum import IntEnum

from perpetua.core.enums import (
    ContingencyType,
    OrdStatus,
    OrdType,
    PegPriceType,
    TimeInForce,
    TriggerSource,
)
from perpetua.core.invariant import fail, invariant
from perpetua.core.orders import ORDER_FIELDS, Order
from perpetua.core.staking import restore_discounts
from perpetua.core.state import (
    FUNDING_FIELDS,
    POSITION_FIELDS,
    Account,
    Market,
    Position,
    Restriction,
    Stake,
    State,
    Unstaking,
    Withdrawal,
)
from perpetua.core.tradfi import with_calendar

__all__ = ["IMAGE_VERSION", "image_hash", "restore", "snapshot"]

IMAGE_VERSION = 2
# Funding rates fixed to a millionth (core.funding) changed no field: a version 2 image written
# before holds its rates as computed then, and they are paid as announced.
# Version 1 had no ``Position.open_comm``: its positions restore with 0 (break-even then
# ignores fees paid before the upgrade).
_OPEN_COMM_AT = POSITION_FIELDS.index("open_comm")

_ORDER_FIELDS = ORDER_FIELDS
_POSITION_FIELDS = POSITION_FIELDS


def _plain(value: object) -> object:
    if isinstance(value, IntEnum):
        return int(value)
    return value


def _order_row(order: Order) -> list[object]:
    return [_plain(getattr(order, name)) for name in _ORDER_FIELDS]


def _market_image(market: Market) -> dict[str, object]:
    book = market.book
    return {
        "symbol": market.spec.symbol,
        "state": market.state,
        "last_price": market.last_price,
        "mark_fine": market.mark_fine,
        "index_fine": market.index_fine,
        "funding": [getattr(market.funding, name) for name in FUNDING_FIELDS],
        "positions": [
            [getattr(pos, name) for name in _POSITION_FIELDS]
            for _, pos in sorted(market.positions.items())
        ],
        "book": [
            [
                [price, list(side.levels[price].shown), list(side.levels[price].hidden)]
                for price in side.prices
            ]
            for side in (book.bids, book.asks)
        ],
        "stops": [list(market.stops[source]) for source in TriggerSource],
        "trailing": list(market.trailing),
    }


def _account_image(acct: Account) -> list[object]:
    return [
        acct.account,
        acct.fee_tier,
        acct.discount_ppm,
        acct.cancel_deadline_ns,
        list(acct.cl_ord_ids.items()),
        list(acct.terminated.items()),
        [[link, list(ids)] for link, ids in acct.links.items()],
        sorted(acct.margin_required.items()),
    ]


def _staking_image(state: State) -> dict[str, object]:
    """Stakes and pending unstaking requests; absent when there are none, so images (and
    hashes) of venues that never staked are what they were before staking existed."""
    if not state.stakes:
        return {}
    return {
        "stakes": [
            [r.account, r.currency, r.staked, r.unstaking, r.eligible, list(r.pending)]
            for _, r in sorted(state.stakes.items())
        ],
        "unstaking": [
            [u.request_id, u.account, u.currency, u.amount, u.release_ns]
            for _, u in sorted(state.unstaking.items())
        ],
    }


def _restore_staking(state: State, data: dict[str, object]) -> None:
    for account, currency, staked, unstaking, eligible, pending in data.get("stakes", []):  # type: ignore[attr-defined]
        record = Stake(int(account), str(currency))
        record.staked, record.unstaking, record.eligible = (
            int(staked),
            int(unstaking),
            int(eligible),
        )
        record.pending = [str(rid) for rid in pending]
        state.stakes[(record.account, record.currency)] = record
    for rid, account, currency, amount, release_ns in data.get("unstaking", []):  # type: ignore[attr-defined]
        state.unstaking[str(rid)] = Unstaking(
            str(rid), int(account), str(currency), int(amount), int(release_ns)
        )
    restore_discounts(state)


def _calendar_image(state: State) -> dict[str, object]:
    """Markets whose hours carry dated exceptions (SetTradingCalendar); absent when none."""
    found = [
        [symbol, list(m.hours.holiday_days), [list(e) for e in m.hours.early_closes]]
        for symbol, m in state.markets.items()
        if m.hours is not m.spec.trading_hours
    ]
    return {"calendars": found} if found else {}


def _restore_calendars(state: State, data: dict[str, object]) -> None:
    for symbol, holidays, early in data.get("calendars", []):  # type: ignore[attr-defined]
        market = state.markets[str(symbol)]
        market.hours = with_calendar(
            market.spec.trading_hours,
            tuple(int(d) for d in holidays),
            tuple(int(e[0]) for e in early),
            tuple(int(e[1]) for e in early),
        )


def snapshot(state: State) -> dict[str, object]:
    data = _snapshot(state)
    if state.restrictions:  # only when some: images (and hashes) without any are unchanged
        data["restrictions"] = [
            [account, r.trading, r.products_denied, r.deposits, r.withdrawals, r.cause]
            for account, r in sorted(state.restrictions.items())
        ]
    return data


def _snapshot(state: State) -> dict[str, object]:
    return {
        **_staking_image(state),
        **_calendar_image(state),
        "version": IMAGE_VERSION,
        "ts_ns": state.ts_ns,
        "next_order_id": state.next_order_id,
        "next_exec_id": state.next_exec_id,
        "next_day_ns": state.next_day_ns,
        "next_timer_ns": state.next_timer_ns,
        "deadlines": sorted(state.deadlines.items()),
        "listed": [list(key) for key in state.listed],
        "series": [[s.key, int(s.payout), *s[2:]] for s in state.series.values()],
        "multi_cross": {cur: list(accounts) for cur, accounts in sorted(state.multi_cross.items())},
        "ledger": state.ledger.snapshot(),
        "deposits": sorted(state.deposits.items()),
        "withdrawals": [
            [w.withdrawal_id, w.account, w.currency, w.amount, w.fee, w.status]
            for _, w in sorted(state.withdrawals.items())
        ],
        "accounts": [_account_image(a) for _, a in sorted(state.accounts.items())],
        "orders": [_order_row(o) for _, o in sorted(state.orders.items())],
        "markets": [_market_image(m) for m in state.markets.values()],
    }


def image_hash(data: dict[str, object]) -> str:
    """``state_hash`` of an image already taken (SHA-256 of its ``repr``)."""
    return hashlib.sha256(repr(data).encode()).hexdigest()


def _restore_order(row: list[object]) -> Order:
    # Built through __init__ (compiled classes allow no bare __new__), then overwritten.
    order = Order(0, 0, "", 0, 0, 0, 0, 0, None, None, None, 0, None, 0, "", "", "", 0)
    invariant(len(row) == len(_ORDER_FIELDS), "order row has the wrong width")
    fields = dict(zip(_ORDER_FIELDS, row, strict=True))
    status = fields.pop("status")
    source = fields.pop("trigger_source")
    for name, value in fields.items():
        setattr(order, name, value)
    if not isinstance(status, int) or not isinstance(source, int):
        fail("order row has a non-integer status or trigger source")
    order.status = OrdStatus(status)
    order.trigger_source = TriggerSource(source)
    # Live orders carry the commands' enum members; restored ones must too, so events after a
    # restart are identical to those before it, repr included.
    order.ord_type = OrdType(order.ord_type)
    order.time_in_force = TimeInForce(order.time_in_force)
    order.peg_price_type = PegPriceType(order.peg_price_type)
    order.contingency_type = ContingencyType(order.contingency_type)
    return order


def _restore_account(row: list[object]) -> Account:
    account, tier, discount, deadline, cl_ord_ids, terminated, links, required = row
    acct = Account(int(account))  # type: ignore[call-overload]
    acct.fee_tier = tier  # type: ignore[assignment]
    acct.discount_ppm = discount  # type: ignore[assignment]
    acct.cancel_deadline_ns = deadline  # type: ignore[assignment]
    acct.cl_ord_ids = {str(k): int(v) for k, v in cl_ord_ids}  # type: ignore[attr-defined]
    acct.terminated = {int(k): str(v) for k, v in terminated}  # type: ignore[attr-defined]
    acct.links = {str(k): [int(i) for i in v] for k, v in links}  # type: ignore[attr-defined]
    acct.margin_required = {str(k): int(v) for k, v in required}  # type: ignore[attr-defined]
    return acct


def _restore_market(market: Market, data: dict[str, object], orders: dict[int, Order]) -> None:
    market.state = data["state"]  # type: ignore[assignment]
    market.last_price = data["last_price"]  # type: ignore[assignment]
    market.mark_fine = data["mark_fine"]  # type: ignore[assignment]
    market.index_fine = data["index_fine"]  # type: ignore[assignment]
    for name, value in zip(FUNDING_FIELDS, data["funding"], strict=True):  # type: ignore[call-overload]
        setattr(market.funding, name, list(value) if isinstance(value, list) else value)
    for row in data["positions"]:  # type: ignore[attr-defined]
        pos = Position(0, "")
        for name, value in zip(_POSITION_FIELDS, row, strict=True):
            setattr(pos, name, value)
        market.positions[pos.account] = pos
        market.account_positions.setdefault(pos.account, {})[market.spec.symbol] = pos
        if pos.liq_fine is not None:
            pos.liq_indexed = pos.liq_fine
            pos.liq_long = pos.qty > 0
            index = market.liq_longs if pos.liq_long else market.liq_shorts
            index.add((pos.liq_fine, pos.account))
    for side, levels in zip(
        (market.book.bids, market.book.asks),
        data["book"],  # type: ignore[call-overload]
        strict=True,
    ):
        for _price, shown, hidden in levels:
            for order_id in (*shown, *hidden):
                order = orders[order_id]
                invariant(order.in_book, "booked order not marked in_book")
                side.add(order)
    for source, ids in zip(TriggerSource, data["stops"], strict=True):  # type: ignore[call-overload]
        market.stops[source] = {i: orders[i] for i in ids}
    market.trailing = {i: orders[i] for i in data["trailing"]}  # type: ignore[attr-defined]


def restore(state: State, data: dict[str, object]) -> None:
    """Fill a freshly built ``state`` (markets from the catalogue, nothing else) from ``data``."""
    version = data.get("version")
    if version == 1:
        for market_data in data["markets"]:  # type: ignore[attr-defined]
            market_data["positions"] = [
                [*row[:_OPEN_COMM_AT], 0, *row[_OPEN_COMM_AT:]] for row in market_data["positions"]
            ]
    elif version != IMAGE_VERSION:
        fail(f"snapshot image version {version} is not 1 or {IMAGE_VERSION}")
    state.ts_ns = data["ts_ns"]  # type: ignore[assignment]
    state.next_order_id = data["next_order_id"]  # type: ignore[assignment]
    state.next_exec_id = data["next_exec_id"]  # type: ignore[assignment]
    state.next_day_ns = data["next_day_ns"]  # type: ignore[assignment]
    state.next_timer_ns = data["next_timer_ns"]  # type: ignore[assignment]
    state.deadlines = {int(a): int(d) for a, d in data["deadlines"]}  # type: ignore[attr-defined]
    state.multi_cross = {
        str(cur): {int(a): None for a in accounts}
        for cur, accounts in data["multi_cross"].items()  # type: ignore[attr-defined]
    }
    state.ledger.restore(data["ledger"])  # type: ignore[arg-type]
    state.deposits = {str(k): int(v) for k, v in data["deposits"]}  # type: ignore[attr-defined]
    for wid, account, currency, amount, fee, status in data["withdrawals"]:  # type: ignore[attr-defined]
        w = Withdrawal(wid, account, currency, amount, fee)
        w.status = status
        state.withdrawals[wid] = w
    for account, trading, denied, deposits, withdrawals, cause in data.get("restrictions", ()):  # type: ignore[attr-defined]
        state.restrictions[int(account)] = Restriction(
            int(trading), int(denied), bool(deposits), bool(withdrawals), int(cause)
        )
    for row in data["accounts"]:  # type: ignore[attr-defined]
        acct = _restore_account(row)
        state.accounts[acct.account] = acct
    for row in data["orders"]:  # type: ignore[attr-defined]
        order = _restore_order(row)
        state.orders[order.order_id] = order
        state.accounts[order.account].orders[order.order_id] = order
    _restore_staking(state, data)
    _restore_calendars(state, data)
    for market_data in data["markets"]:  # type: ignore[attr-defined]
        market = state.markets.get(market_data["symbol"])
        if market is None:
            fail(f"snapshot names unknown market {market_data['symbol']}")
        _restore_market(market, market_data, state.orders)
    for order in state.orders.values():
        order.position = state.markets[order.symbol].position(order.account)
        if order.reduce_only:
            counts = state.markets[order.symbol].reduce_only_counts
            counts[order.account] = counts.get(order.account, 0) + 1
