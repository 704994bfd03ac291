"""A full consistency audit of the core's state: O(state), for tests, the simulator and the
operator's ``verify`` command, never on the hot path.

It re-derives from first principles what the engine maintains incrementally and fails on any
difference: per currency the ledger sums to zero with EXTERNAL included; CLEARING equals minus the
open position costs; per market, long and short contracts net to zero; no user balance is
negative and holds never exceed balances; holds equal what the open spot orders need; position
buy/sell sums and margin totals match the working orders; every book is well formed and uncrossed;
every live order is indexed where it should be; every liquidation threshold is registered once, on
its position's side, and nothing else is; isolated and single-market cross thresholds equal the
ones recomputed now (a multi-market cross threshold also moves with the other markets' marks).
"""

from perpetua.core import liquidation, margin, restrictions, staking
from perpetua.core.enums import TERMINAL_STATUSES
from perpetua.core.instruments import Payout
from perpetua.core.invariant import invariant
from perpetua.core.ledger import CLEARING, EXTERNAL, STAKING
from perpetua.core.state import State

__all__ = ["audit", "conservation_totals"]


def conservation_totals(state: State) -> dict[str, int]:
    """Per currency, the sum over all accounts but EXTERNAL (= deposits - withdrawals)."""
    return {cur: state.ledger.total(cur) for cur in sorted(state.ledger.cells)}


def _audit_ledger(state: State) -> None:
    ledger = state.ledger
    costs: dict[str, int] = {}
    for market in state.markets.values():
        if market.spec.payout == Payout.SPOT:
            continue
        cur = market.spec.settl_currency
        costs[cur] = costs.get(cur, 0) + sum(p.cost for p in market.positions.values())
    for cur, book in ledger.balances.items():
        invariant(ledger.total(cur, include_external=True) == 0, f"{cur}: ledger does not sum")
        invariant(book.get(CLEARING, 0) == -costs.get(cur, 0), f"{cur}: clearing != -costs")
        for account, amount in book.items():
            if account > 0:
                invariant(amount >= 0, f"{cur}: account {account} negative")
                invariant(ledger.held_amount(account, cur) <= amount, f"{cur}: hold > balance")
            elif account not in (EXTERNAL, CLEARING):
                invariant(account < 0, "system accounts have negative ids")


def _audit_market_orders(state: State) -> None:
    holds: dict[tuple[str, int], int] = {}
    for order in state.orders.values():
        invariant(order.status not in TERMINAL_STATUSES, "terminal order still live")
        invariant(order.cum_qty + order.leaves_qty == order.order_qty, "qty identity broken")
        invariant(order.leaves_qty > 0, "live order with nothing left")
        market = state.markets[order.symbol]
        acct = state.accounts[order.account]
        invariant(acct.orders.get(order.order_id) is order, "order missing from its account")
        invariant(
            order.position is not None and market.positions.get(order.account) is order.position,
            "live order does not hold its market's position",
        )
        if market.spec.payout == Payout.SPOT and order.hold_amount:
            spec = market.spec
            cur = spec.settl_currency if order.side > 0 else spec.base_currency
            holds[(cur, order.account)] = holds.get((cur, order.account), 0) + order.hold_amount
            need = margin.spot_hold(
                spec, order, margin.taker_rate_ppm(state, market, order.account)
            )[1]
            invariant(order.hold_amount == need, f"order {order.order_id} hold drift")
    for cur, book in state.ledger.held.items():
        for account, amount in book.items():
            invariant(holds.get((cur, account), 0) == amount, f"{cur}/{account}: holds drift")


def _audit_positions(state: State) -> None:
    required: dict[tuple[int, str], int] = {}
    for market in state.markets.values():
        market.book.check()
        invariant(
            sum(p.qty for p in market.positions.values()) == 0,
            f"{market.spec.symbol}: contracts do not net to zero",
        )
        if market.spec.payout == Payout.SPOT:
            continue
        for pos in market.positions.values():
            invariant(
                pos.qty != 0 or pos.open_comm == 0,
                f"{pos.symbol}/{pos.account}: a flat position has opening fees",
            )
            working = [
                o
                for o in state.orders.values()
                if o.symbol == pos.symbol and o.account == pos.account and o.margin_qty
            ]
            invariant(
                sum(o.margin_value for o in working if o.side > 0) == pos.buy_value,
                "buy value drift",
            )
            invariant(
                sum(o.margin_value for o in working if o.side < 0) == pos.sell_value,
                "sell value drift",
            )
            expected = margin.derivative_requirement(market, pos, pos.buy_value, pos.sell_value)
            invariant(expected == pos.margin_required, "position requirement drift")
            key = (pos.account, market.spec.settl_currency)
            required[key] = required.get(key, 0) + pos.margin_required
    for acct in state.accounts.values():
        for cur, amount in acct.margin_required.items():
            invariant(required.get((acct.account, cur), 0) == amount, "account margin drift")


def _cross_markets(state: State) -> dict[tuple[int, str], int]:
    """(account, currency) -> number of markets where the account holds a cross position."""
    count: dict[tuple[int, str], int] = {}
    for market in state.markets.values():
        currency = market.spec.settl_currency
        for pos in market.positions.values():
            if pos.qty and not pos.leverage_e2 and market.spec.payout != Payout.SPOT:
                count[(pos.account, currency)] = count.get((pos.account, currency), 0) + 1
    return count


def _audit_liquidation_index(state: State) -> None:
    cross = _cross_markets(state)
    for market in state.markets.values():
        symbol = market.spec.symbol
        longs: list[tuple[int, int]] = []
        shorts: list[tuple[int, int]] = []
        for pos in market.positions.values():
            if pos.liq_fine is not None:
                invariant(pos.qty != 0, f"{symbol}/{pos.account}: flat position has a threshold")
                (longs if pos.qty > 0 else shorts).append((pos.liq_fine, pos.account))
            key = (pos.account, market.spec.settl_currency)
            if pos.leverage_e2 or cross.get(key, 0) <= 1:
                invariant(
                    pos.liq_fine == liquidation._threshold(state, market, pos),
                    f"{symbol}/{pos.account}: stale liquidation threshold",
                )
        liquidation.catch_up_index(market)  # derived and lazy: caught up, then compared
        invariant(list(market.liq_longs) == sorted(longs), f"{symbol}: long index drift")
        invariant(list(market.liq_shorts) == sorted(shorts), f"{symbol}: short index drift")


def _audit_reduce_only_index(state: State) -> None:
    counts: dict[tuple[str, int], int] = {}
    for order in state.orders.values():
        if order.reduce_only:
            key = (order.symbol, order.account)
            counts[key] = counts.get(key, 0) + 1
    indexed = {
        (symbol, account): count
        for symbol, market in state.markets.items()
        for account, count in market.reduce_only_counts.items()
    }
    invariant(indexed == counts, "ReduceOnly order index drift")


def _audit_staking(state: State) -> None:
    """STAKING holds exactly every stake and pending unstaking request; each record's figures
    agree with its requests; each staker's discount is its tier's."""
    held: dict[str, int] = {}
    for (account, currency), record in state.stakes.items():
        invariant(record.staked >= 0 and record.unstaking >= 0, f"{account}: negative stake")
        invariant(0 <= record.eligible <= record.staked, f"{account}: eligible out of range")
        requests = [state.unstaking[rid] for rid in record.pending]
        invariant(
            all(r.account == account and r.currency == currency for r in requests),
            f"{account}: a pending request of someone else",
        )
        invariant(sum(r.amount for r in requests) == record.unstaking, f"{account}: unstaking")
        held[currency] = held.get(currency, 0) + record.staked + record.unstaking
        invariant(
            state.accounts[account].staking_discount_ppm
            == staking.staking_discount_ppm(state, account),
            f"{account}: staking discount drift",
        )
    pending = sum(len(r.pending) for r in state.stakes.values())
    invariant(pending == len(state.unstaking), "unstaking requests drift")
    for currency, book in state.ledger.balances.items():
        invariant(book.get(STAKING, 0) == held.get(currency, 0), f"{currency}: staking drift")


def audit(state: State) -> None:
    _audit_staking(state)
    _audit_reduce_only_index(state)
    _audit_ledger(state)
    _audit_market_orders(state)
    _audit_positions(state)
    _audit_liquidation_index(state)
    restrictions.audit(state)
