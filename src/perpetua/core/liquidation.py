"""Liquidation: thresholds, the mark-price scan, takeover by the insurance fund, and ADL.

Thresholds. Each user position with a finite liquidation price is registered in its market's
sorted index as ``(threshold, account)`` in millionths of a tick: a long is liquidated when
mark <= threshold, a short when mark >= threshold. The threshold is where the position's
unrealised PnL eats its *cushion*: isolated ``posMargin - posMaint``; cross ``W + others' uPnL -
sum of cross posMaint``, with ``W`` the wallet less spot holds and isolated margins, so a
cross account is liquidated on its equity across its positions in that currency (§7.4, §7.5).
A mark update therefore looks only at the positions it crossed (two bisections), not at every
position; thresholds are recomputed when what they depend on changes (see engine follow-up).

The index. ``Position.liq_fine`` is the threshold (state); the sorted index is derived and
catches up lazily: a changed threshold only queues its position (``Market.liq_pending``, at
most ``LIQUIDATION_PENDING_MAX``, then it catches up), and ``scan`` catches up before it reads
the index. A scan after a command that did not move the mark reads no index at all: it checks
only the positions whose thresholds the follow-up just re-derived. That is exact because after
every scan no position is crossed at that mark (each crossed one was liquidated, or re-derived
and found safe), and a position can become crossed only by its threshold changing (it is then
re-derived, and checked) or by the mark moving (the next scan is whole: the mark differs from
``Market.liq_scanned_mark``). A follow-up stopped by ``FOLLOW_UP_ROUNDS_MAX`` may leave a crossed
position behind, so the next scans are whole (``Market.liq_rescan``). An index entry was
rewritten on every fill; now once per mark move (or per ``LIQUIDATION_PENDING_MAX`` changes).

Process (§7.5), for a crossed position: cancel the account's orders on the symbol and re-check;
lower the risk limit to the tier the position needs and re-check; above the base tier, try a
FillOrKill reduction into the lower tier at the bankruptcy price and re-check; otherwise the
insurance fund (the liquidation engine, account ``INSURANCE``) takes the whole position over at
the bankruptcy price and works a limit order to close it (the public ``liquidation`` table is
that order). A fill better than bankruptcy is profit of the fund; when the mark passes the
fund's entry the order follows the mark and the fund absorbs the loss — unless the fund cannot
cover it: then what the book takes at the fund's entry (the bankruptcy price) or better is
closed at once (IOC), and the rest of the opposing side is auto-deleveraged at that price,
highest ``PnL% x effective leverage`` first (§7.5 step 4), their orders on the symbol cancelled.
"""

from perpetua.core import lifecycle, margin, placement
from perpetua.core.commands import PlaceOrder
from perpetua.core.emit import NEW, POSITION_CHANGED
from perpetua.core.enums import ExecInst, OrdType, Side, TimeInForce
from perpetua.core.events import Deleveraged, Event, PositionChanged, PositionLiquidated
from perpetua.core.fills import apply_position_fill, realise
from perpetua.core.ledger import INSURANCE, TransferCode
from perpetua.core.orders import Order
from perpetua.core.risk import (
    PositionMargin,
    adl_rank,
    closing_fee,
    initial_margin,
    price_for_value_fine,
    required_risk_limit,
)
from perpetua.core.state import PRICE_FINE_PER_TICK, Market, Position, State

__all__ = [
    "FOLLOW_UP_ROUNDS_MAX",
    "LIQUIDATION_PENDING_MAX",
    "AccountView",
    "bankrupt_margin",
    "catch_up_index",
    "follow_up",
    "cushion",
    "is_crossed",
    "published_prices",
    "refresh_threshold",
    "scan",
    "work_insurance",
]

FOLLOW_UP_ROUNDS_MAX = 16  # liquidation -> balance change -> liquidation cascades per command
# Positions whose thresholds changed that the sorted index may lag behind, per market.
LIQUIDATION_PENDING_MAX = 1_024
_ACCOUNT_MIN = -(1 << 62)
_ACCOUNT_MAX = 1 << 62
_LIQUIDATION_TEXT = "Canceled: Liquidation"


class AccountView:
    """One pass over an account's positions in a currency: what backs its cross positions and
    each position's margin figures and unrealised PnL, so every threshold and bankruptcy
    margin of the account is O(1) after it."""

    __slots__ = ("cross_maint", "cross_upnl", "figures", "upnl", "wallet")

    def __init__(self, state: State, account: int, currency: str) -> None:
        ledger = state.ledger
        # Wallet less spot holds less isolated positions' margin: what backs cross positions.
        self.wallet = ledger.available(account, currency)
        self.cross_maint = 0
        self.cross_upnl = 0
        self.figures: dict[str, PositionMargin] = {}
        self.upnl: dict[str, int] = {}
        for symbol, pos in state.account_positions.get(account, {}).items():
            market = state.markets[symbol]
            if market.spec.settl_currency != currency or pos.qty == 0:
                continue
            figures = margin.position_figures(market, pos)
            self.figures[symbol] = figures
            if pos.leverage_e2:
                self.wallet -= figures.pos_margin
                continue
            upnl = margin.unrealised_pnl(market, pos)
            self.upnl[symbol] = upnl
            self.cross_maint += figures.pos_maint
            self.cross_upnl += upnl

    def cushion(self, symbol: str, pos: Position) -> int:
        """How much unrealised loss ``pos`` can take before it must be liquidated."""
        figures = self.figures[symbol]
        if pos.leverage_e2:
            return figures.pos_margin - figures.pos_maint
        others = self.cross_upnl - self.upnl[symbol]
        return self.wallet + others - self.cross_maint

    def bankrupt_margin(self, symbol: str, pos: Position) -> int:
        """The margin lost when ``pos`` is closed at its bankruptcy price: all of it but the
        closing fee ``posComm``, which pays the liquidation fee. Cross: the account's equity
        in the currency, less what its other positions' unrealised PnL takes."""
        figures = self.figures[symbol]
        if pos.leverage_e2:
            return figures.pos_margin - figures.pos_comm
        return self.wallet + self.cross_upnl - self.upnl[symbol] - figures.pos_comm


def _view(state: State, market: Market, pos: Position) -> AccountView:
    return AccountView(state, pos.account, market.spec.settl_currency)


def cushion(state: State, market: Market, pos: Position) -> int:
    """How much unrealised loss ``pos`` (open) can take before it must be liquidated."""
    return _view(state, market, pos).cushion(market.spec.symbol, pos)


def bankrupt_margin(state: State, market: Market, pos: Position) -> int:
    """The margin lost when ``pos`` (open) is closed at its bankruptcy price."""
    return _view(state, market, pos).bankrupt_margin(market.spec.symbol, pos)


def _threshold(
    state: State, market: Market, pos: Position, view: AccountView | None = None
) -> int | None:
    if pos.qty == 0 or pos.account < 0:
        return None
    if view is None:
        view = _view(state, market, pos)
    target = pos.cost - view.cushion(market.spec.symbol, pos)
    return price_for_value_fine(
        market.spec, pos.qty, target, PRICE_FINE_PER_TICK, round_up=pos.qty > 0
    )


def refresh_threshold(
    state: State, market: Market, pos: Position, view: AccountView | None = None
) -> None:
    new = _threshold(state, market, pos, view)
    if new == pos.liq_fine:
        return
    pos.liq_fine = new
    pending = market.liq_pending
    pending[pos] = None
    if len(pending) > LIQUIDATION_PENDING_MAX:
        catch_up_index(market)


def catch_up_index(market: Market) -> None:
    """Bring the sorted index up to the positions' thresholds (see "The index")."""
    longs, shorts = market.liq_longs, market.liq_shorts
    for pos in market.liq_pending:
        indexed = pos.liq_indexed
        if indexed is not None:
            (longs if pos.liq_long else shorts).discard((indexed, pos.account))
        threshold = pos.liq_fine
        pos.liq_indexed = threshold
        if threshold is not None:
            pos.liq_long = pos.qty > 0
            (longs if pos.liq_long else shorts).add((threshold, pos.account))
    market.liq_pending = {}


def is_crossed(market: Market, pos: Position) -> bool:
    mark, threshold = market.mark_fine, pos.liq_fine
    if mark is None or threshold is None:
        return False
    return mark <= threshold if pos.qty > 0 else mark >= threshold


def published_prices(state: State, market: Market, pos: Position) -> tuple[int | None, int | None]:
    """(bankruptcy price, liquidation price) in ticks, longs rounded up and shorts down."""
    if pos.qty == 0:
        return None, None
    spec = market.spec
    bankrupt = price_for_value_fine(
        spec, pos.qty, pos.cost - bankrupt_margin(state, market, pos), 1, round_up=pos.qty > 0
    )
    liquidation = price_for_value_fine(
        spec, pos.qty, pos.cost - cushion(state, market, pos), 1, round_up=pos.qty > 0
    )
    return bankrupt, liquidation


def scan(
    state: State, market: Market, out: list[Event], refreshed: list[Position] | None = None
) -> None:
    """Liquidate every position the current mark has crossed, in account order.

    ``refreshed``: the positions whose thresholds were just re-derived; when the mark is the
    one the last whole scan used, only they can be crossed (see "The index")."""
    mark = market.mark_fine
    if mark is None:
        return
    if refreshed is None or market.liq_rescan or mark != market.liq_scanned_mark:
        catch_up_index(market)
        market.liq_scanned_mark = mark
        market.liq_rescan = False
        due = [a for _, a in market.liq_longs.irange((mark, _ACCOUNT_MIN), None)]
        due.extend(a for _, a in market.liq_shorts.irange(None, (mark, _ACCOUNT_MAX)))
    else:
        due = [pos.account for pos in refreshed if is_crossed(market, pos)]
    for account in sorted(due):
        pos = market.positions.get(account)
        if pos is not None and is_crossed(market, pos):
            _liquidate(state, market, pos, out)


def _refresh(state: State, market: Market, pos: Position) -> bool:
    """Re-derive margins and threshold; True if the position is still crossed."""
    margin.refresh_requirement(state, market, pos)
    refresh_threshold(state, market, pos)
    state.touched_positions[(market.spec.symbol, pos.account)] = pos
    return is_crossed(market, pos)


def _liquidate(state: State, market: Market, pos: Position, out: list[Event]) -> None:
    acct = state.account(pos.account)
    lifecycle.cancel_account_orders(state, acct, out, _LIQUIDATION_TEXT, market.spec.symbol)
    if not _refresh(state, market, pos):
        return
    spec = market.spec
    value = abs(pos.cost)
    needed = required_risk_limit(spec, value)
    if needed < pos.risk_limit:
        pos.risk_limit = needed
        if not _refresh(state, market, pos):
            return
    if value > spec.risk_limit and spec.risk_step > 0 and not _reduce_tier(state, market, pos, out):
        return
    _takeover(state, market, pos, out)


def _bankrupt_ticks(state: State, market: Market, pos: Position) -> int:
    spec = market.spec
    price = price_for_value_fine(
        spec, pos.qty, pos.cost - bankrupt_margin(state, market, pos), 1, round_up=pos.qty > 0
    )
    if price is None:
        mark = market.mark_fine or PRICE_FINE_PER_TICK
        price = mark // PRICE_FINE_PER_TICK
    return min(max(price, 1), spec.max_price_ticks)


def _reduce_tier(state: State, market: Market, pos: Position, out: list[Event]) -> bool:
    """FillOrKill reduction into the next lower risk tier; True if still crossed after it."""
    spec = market.spec
    value = abs(pos.cost)
    lower = required_risk_limit(spec, value) - spec.risk_step
    held = abs(pos.qty)
    cut = -(-held * (value - lower) // value)
    cut = min(held, -(-cut // spec.lot_size) * spec.lot_size)
    if cut <= 0 or cut >= held:
        return True
    side = Side.SELL if pos.qty > 0 else Side.BUY
    placement.place(
        state,
        PlaceOrder(
            state.ts_ns,
            pos.account,
            spec.symbol,
            side,
            cut,
            OrdType.LIMIT,
            price=_bankrupt_ticks(state, market, pos),
            time_in_force=TimeInForce.FILL_OR_KILL,
            exec_inst=ExecInst.REDUCE_ONLY,
            text="Liquidation: risk tier reduction",
        ),
        out,
    )
    return _refresh(state, market, pos)


def _takeover(state: State, market: Market, pos: Position, out: list[Event]) -> None:
    spec = market.spec
    currency = spec.settl_currency
    qty = pos.qty
    price = _bankrupt_ticks(state, market, pos)
    fee = margin.position_figures(market, pos).pos_comm
    value = market.value(-qty, price)
    ref = state.new_exec_id()
    realised = apply_position_fill(market, pos, -qty, value, price)
    realise(state, out, pos.account, currency, realised, ref)
    fund = market.position(INSURANCE)
    realise(
        state, out, INSURANCE, currency, apply_position_fill(market, fund, qty, -value, price), ref
    )
    fee = min(fee, state.ledger.available(pos.account, currency))
    if fee > 0:
        state.ledger.transfer(
            out,
            state.ts_ns,
            pos.account,
            INSURANCE,
            currency,
            fee,
            TransferCode.LIQUIDATION_FEE,
            ref,
        )
    if pos.leverage_e2:
        pos.deposit = 0
    out.append(PositionLiquidated(state.ts_ns, pos.account, spec.symbol, qty, price, realised, fee))
    _refresh(state, market, pos)
    _refresh(state, market, fund)
    work_insurance(state, market, out)


def _fund_order_price(market: Market, fund: Position) -> int:
    """The fund's target: its entry (break-even), or the mark once the mark is past it."""
    spec = market.spec
    entry = price_for_value_fine(spec, fund.qty, fund.cost, 1, round_up=fund.qty > 0)
    price = entry if entry is not None else 1
    mark = market.mark_fine
    if mark is not None and margin.unrealised_pnl(market, fund) < 0:
        price = -(-mark // PRICE_FINE_PER_TICK) if fund.qty < 0 else mark // PRICE_FINE_PER_TICK
    return min(max(price, 1), spec.max_price_ticks)


def work_insurance(state: State, market: Market, out: list[Event]) -> None:
    """Keep one closing order for the fund's position; deleverage when the fund can't cover."""
    fund = market.positions.get(INSURANCE)
    acct = state.account(INSURANCE)
    symbol = market.spec.symbol
    working = [o for o in acct.orders.values() if o.symbol == symbol]
    if fund is None or fund.qty == 0:
        for order in working:
            placement.cancel_order(state, market, order, out, "Canceled: position closed")
        return
    loss = -margin.unrealised_pnl(market, fund)
    currency = market.spec.settl_currency
    if loss > 0 and loss > state.ledger.balance(INSURANCE, currency):
        # §7.5 step 4: deleverage only what the book cannot take by the bankruptcy price.
        _close_at_entry(state, market, fund, working, out)
        working = []
        if fund.qty == 0:
            return
        if -margin.unrealised_pnl(market, fund) > state.ledger.balance(INSURANCE, currency):
            _deleverage(state, market, fund, out)
            return
    price = _fund_order_price(market, fund)
    side = Side.SELL if fund.qty > 0 else Side.BUY
    qty = abs(fund.qty)
    if len(working) == 1 and working[0].price == price and working[0].leaves_qty == qty:
        return
    for order in working:
        placement.cancel_order(state, market, order, out, "Canceled: liquidation order repriced")
    placement.place(
        state,
        PlaceOrder(
            state.ts_ns,
            INSURANCE,
            symbol,
            side,
            qty,
            OrdType.LIMIT,
            price=price,
            text="Liquidation",
        ),
        out,
    )


def _close_at_entry(
    state: State, market: Market, fund: Position, working: list[Order], out: list[Event]
) -> None:
    """Cancel the fund's orders and close what the book takes at its entry or better (IOC)."""
    for order in working:
        placement.cancel_order(state, market, order, out, "Canceled: liquidation order repriced")
    spec = market.spec
    entry = price_for_value_fine(spec, fund.qty, fund.cost, 1, round_up=fund.qty > 0)
    price = min(max(entry or 1, 1), spec.max_price_ticks)
    side = Side.SELL if fund.qty > 0 else Side.BUY
    placement.place(
        state,
        PlaceOrder(
            state.ts_ns,
            INSURANCE,
            spec.symbol,
            side,
            abs(fund.qty),
            OrdType.LIMIT,
            price=price,
            time_in_force=TimeInForce.IMMEDIATE_OR_CANCEL,
            text="Liquidation",
        ),
        out,
    )


def adl_rank_of(state: State, market: Market, pos: Position) -> int:
    """``pos``'s place in its side's deleveraging queue at the mark (higher goes first)."""
    mark = market.mark_fine or 0
    mark_value = market.value_fine(pos.qty, mark) if mark > 0 else pos.cost
    # Ranking reads every opposing position: the bankruptcy margin without a pass over the
    # account where the position alone decides it (AccountView.bankrupt_margin otherwise).
    value = pos.cost if pos.cost >= 0 else -pos.cost
    pos_init = initial_margin(value, margin.tier_of(market, pos), pos.leverage_e2)
    if pos.leverage_e2:  # isolated: posMargin - posComm = posInit + deposit
        at_risk = pos_init + pos.deposit
    elif len(state.account_positions.get(pos.account, ())) == 1:  # cross, alone: W - posComm
        ledger = state.ledger
        currency = market.spec.settl_currency
        at_risk = ledger.available(pos.account, currency) - closing_fee(
            value, pos_init, market.spec.taker_fee_ppm
        )
    else:
        at_risk = bankrupt_margin(state, market, pos)
    return adl_rank(pos.cost, mark_value, pos.cost - at_risk)


def _deleverage(state: State, market: Market, fund: Position, out: list[Event]) -> None:
    spec = market.spec
    currency = spec.settl_currency
    price = price_for_value_fine(spec, fund.qty, fund.cost, 1, round_up=fund.qty > 0)
    price = min(max(price or 1, 1), spec.max_price_ticks)
    opposing = [p for p in market.positions.values() if p.account > 0 and p.qty * fund.qty < 0]
    opposing.sort(key=lambda p: (-adl_rank_of(state, market, p), p.account))
    for pos in opposing:
        if fund.qty == 0:
            break
        take = min(abs(fund.qty), abs(pos.qty))
        user_qty = take if pos.qty < 0 else -take
        value = market.value(user_qty, price)
        ref = state.new_exec_id()
        realised = apply_position_fill(market, pos, user_qty, value, price)
        realise(state, out, pos.account, currency, realised, ref)
        realise(
            state,
            out,
            INSURANCE,
            currency,
            apply_position_fill(market, fund, -user_qty, -value, price),
            ref,
        )
        lifecycle.cancel_account_orders(
            state, state.account(pos.account), out, "Canceled: Auto-deleveraged", spec.symbol
        )
        out.append(Deleveraged(state.ts_ns, pos.account, spec.symbol, user_qty, price, realised))
        _refresh(state, market, pos)
    _refresh(state, market, fund)
    for order in [o for o in state.account(INSURANCE).orders.values() if o.symbol == spec.symbol]:
        placement.cancel_order(state, market, order, out, "Canceled: position deleveraged")


def _refresh_account(
    state: State,
    account: int,
    currency: str,
    scan_markets: dict[str, list[Position] | None],
    views: dict[tuple[int, str], AccountView],
) -> None:
    """Re-derive the thresholds of ``account``'s positions in ``currency`` (its wallet or
    another of its positions changed) and keep the multi-market cross index up to date. The
    view goes into ``views`` for publishing the account's positions (see ``follow_up``)."""
    cross_open = 0
    view = AccountView(state, account, currency)
    views[(account, currency)] = view
    # By symbol: the scan order reaches events, and a restored account's positions are not in
    # the live insertion order.
    held = list(state.account_positions.get(account, {}).items())
    if len(held) > 1:
        held.sort()
    for symbol, pos in held:
        market = state.markets[symbol]
        if market.spec.settl_currency != currency or market.spot:
            continue
        refresh_threshold(state, market, pos, view)
        refreshed = scan_markets.setdefault(symbol, [])
        if refreshed is not None:  # None: the mark moved, the whole index is scanned
            refreshed.append(pos)
        if pos.qty and not pos.leverage_e2:
            cross_open += 1
    multi = state.multi_cross.setdefault(currency, {})
    if cross_open >= 2:
        multi[account] = None
    else:
        multi.pop(account, None)


def _position_event(
    state: State, market: Market, pos: Position, view: AccountView | None
) -> PositionChanged:
    """``pos``'s row; ``view``, when given, is its account's view as the state is now."""
    figures = margin.position_figures(market, pos)
    bankrupt = liquidation = None
    if pos.account > 0 and pos.qty:
        # The published liquidation price is the registered threshold rounded to the tick the
        # same way (longs up, shorts down); the bankruptcy price needs the margin at risk.
        threshold = pos.liq_fine
        if threshold is not None:
            liquidation = (
                -(-threshold // PRICE_FINE_PER_TICK)
                if pos.qty > 0
                else threshold // PRICE_FINE_PER_TICK
            )
        if pos.leverage_e2:
            at_risk = figures.pos_margin - figures.pos_comm
        elif view is not None:
            at_risk = view.bankrupt_margin(market.spec.symbol, pos)
        else:  # cross: needs the account
            at_risk = bankrupt_margin(state, market, pos)
        bankrupt = price_for_value_fine(
            market.spec, pos.qty, pos.cost - at_risk, 1, round_up=pos.qty > 0
        )
    return NEW(
        POSITION_CHANGED,
        (
            state.ts_ns,
            pos.account,
            market.spec.symbol,
            pos.qty,
            pos.cost,
            pos.realised_pnl,
            0,
            pos.leverage_e2,
            pos.risk_limit,
            pos.deposit,
            figures.pos_init,
            figures.pos_comm,
            figures.pos_margin,
            figures.pos_maint,
            figures.init_ppm,
            figures.maint_ppm,
            bankrupt,
            liquidation,
            pos.margin_required - figures.pos_margin,
            pos.open_comm,
        ),
    )


def follow_up(state: State, out: list[Event]) -> None:
    """After a command: re-derive liquidation thresholds for whatever it changed, liquidate what
    the mark has crossed, keep the insurance fund's orders working, publish positions.

    What changed is read from state (the ledger's ``balances_changed`` and ``holds_changed``,
    ``touched_positions``, ``touched_marks``), never from the events, which recovery does not
    build.

    Publishing a cross position needs its account's view (what backs it); the last view each
    account got here is reused. It is current: whatever changes an account's balances, holds or
    positions during the follow-up makes the next round refresh it (a new view), so when the
    rounds end because nothing is left (not at the limit) every view is as the state is."""
    published: dict[tuple[str, int], Position] = {}
    views: dict[tuple[int, str], AccountView] = {}
    settled = False
    for _ in range(FOLLOW_UP_ROUNDS_MAX):
        accounts = state.ledger.balances_changed
        state.ledger.balances_changed = {}
        if state.ledger.holds_changed:
            accounts.update(state.ledger.holds_changed)
            state.ledger.holds_changed = {}
        # Only positions touched since the last round: one refreshed in an earlier round and
        # touched again since (the fund's order filling it) needs its threshold again.
        touched = state.touched_positions
        state.touched_positions = {}
        published.update(touched)
        for symbol, account in touched:
            if account > 0:
                accounts[(account, state.markets[symbol].spec.settl_currency)] = None
        marks = state.touched_marks
        state.touched_marks = {}
        if not accounts and not marks:
            settled = True
            break
        scan_markets: dict[str, list[Position] | None] = {symbol: None for symbol in marks}
        for symbol in marks:
            currency = state.markets[symbol].spec.settl_currency
            for account in list(state.multi_cross.get(currency, {})):
                if symbol in state.account_positions.get(account, {}):
                    accounts[(account, currency)] = None
        for account, currency in accounts:
            _refresh_account(state, account, currency, scan_markets, views)
        for symbol, refreshed in scan_markets.items():
            market = state.markets[symbol]
            scan(state, market, out, refreshed)
            if INSURANCE in market.positions:
                work_insurance(state, market, out)
    state.ledger.balances_changed = {}  # a last round's transfers: not followed up (the limit)
    if not settled:  # stopped at the limit: a crossed position may be left for the next scan
        for market in state.markets.values():
            market.liq_rescan = True
    published.update(state.touched_positions)
    state.touched_positions = published
    _publish_positions(state, out, views if settled else {})


def _publish_positions(
    state: State, out: list[Event], views: dict[tuple[int, str], AccountView]
) -> None:
    touched = state.touched_positions
    if not touched:
        return
    state.touched_positions = {}
    publish = state.publish
    margins = state.order_margins_changed
    for (symbol, _account), pos in touched.items():
        market = state.markets[symbol]
        if publish:
            view = views.get((pos.account, market.spec.settl_currency))
            out.append(_position_event(state, market, pos, view))
            if margins:
                margins.pop(pos, None)  # published whole: its order_margin is in the row
        market.drop_position_if_empty(pos)
