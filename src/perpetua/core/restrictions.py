"""Account restrictions: what a restricted account may do, enforced at the core's entry.

Invariants (``audit`` re-derives the first two):

- A FROZEN account has no live orders; a CLOSE_ONLY account has no live order that is not
  ReduceOnly or Close; an account with denied product classes has no such order in them.
  Setting a restriction cancels the orders it forbids, in order id order, in the same command.
- Only ``SetAccountRestriction`` changes ``state.restrictions``: the restriction is core state,
  journaled with the commands and in snapshots, so replay and restart reproduce it.
- A rejection a restriction causes carries the restriction's cause (``Rejected.cause``), so the
  error can say both what the account may do (the reason's message) and why (the cause).
- Checks run before the order's own validation (a restricted account learns that first), and
  only for accounts that have a restriction: unrestricted accounts pay one dict lookup.

What each mode allows, orders and money:

=============  ====================================  ==============  =========  ===========
trading        new orders                            amends          deposits   withdrawals
=============  ====================================  ==============  =========  ===========
ALLOWED        any (denied classes: reducing only)   any             the flag   the flag
CLOSE_ONLY     ReduceOnly / Close only (no spot)     not raising     the flag   the flag
               the quantity of a non-reducing order
FROZEN         none                                  none            none       none
=============  ====================================  ==============  =========  ===========

Cancels are always allowed. ``LiquidateAccount`` (operator) cancels an account's orders and
closes each position with an ImmediateOrCancel Close order limited to ``band_ppm`` from the
mark (else last) price: what does not fill within the band stays open, recorded as cancelled.
"""

from perpetua.core import lifecycle, placement
from perpetua.core.commands import (
    AmendOrder,
    Deposit,
    LiquidateAccount,
    PlaceOrder,
    SetAccountRestriction,
    WalletTransfer,
    WithdrawalRequest,
)
from perpetua.core.enums import (
    PRODUCT_CLASS_ALL,
    ExecInst,
    OrdType,
    ProductClass,
    RestrictionCause,
    Side,
    TimeInForce,
    TradingMode,
)
from perpetua.core.events import AccountRestricted, Event, Rejected
from perpetua.core.instruments import Payout, product_class
from perpetua.core.invariant import invariant
from perpetua.core.orders import Order
from perpetua.core.reasons import Reason
from perpetua.core.state import PRICE_FINE_PER_TICK, Market, Restriction, State
from perpetua.core.units import PPM, mul_div_floor

__all__ = [
    "audit",
    "check_amend",
    "check_spot_trade",
    "check_deposit",
    "check_place",
    "check_transfer",
    "check_withdrawal",
    "liquidate_account",
    "set_restriction",
]

_REDUCING = ExecInst.REDUCE_ONLY | ExecInst.CLOSE
TEXT_CANCEL_FROZEN = "Canceled: account frozen"
TEXT_CANCEL_CLOSE_ONLY = "Canceled: account close-only"
TEXT_CANCEL_PRODUCT = "Canceled: product not available to this account"
TEXT_CANCEL_LIQUIDATION = "Canceled: operator liquidation"
TEXT_LIQUIDATION = "Liquidation by the operator (account restriction)"


def _reject(
    state: State, out: list[Event], command: str, account: int, reason: Reason, cause: int
) -> None:
    out.append(Rejected(state.ts_ns, command, account, reason, "", 0, 0, "", cause))


def _forbids(restriction: Restriction, market: Market, reducing: bool) -> Reason:
    """Why ``restriction`` forbids new exposure on ``market`` (OK when it does not)."""
    if restriction.trading == TradingMode.FROZEN:
        return Reason.ACCOUNT_FROZEN
    if reducing and market.spec.payout != Payout.SPOT:
        return Reason.OK
    if restriction.trading == TradingMode.CLOSE_ONLY:
        return Reason.ACCOUNT_CLOSE_ONLY
    if restriction.products_denied & product_class(market.spec):
        return Reason.PRODUCT_NOT_PERMITTED
    return Reason.OK


def check_place(state: State, cmd: PlaceOrder, out: list[Event]) -> bool:
    """False (and a rejection in ``out``) when the account's restriction forbids ``cmd``."""
    restriction = state.restrictions.get(cmd.account)
    if restriction is None:
        return True
    market = state.markets.get(cmd.symbol)
    if market is None:
        if restriction.trading != TradingMode.FROZEN:
            return True  # the order's own validation names the unknown symbol
        reason = Reason.ACCOUNT_FROZEN
    else:
        reason = _forbids(restriction, market, bool(cmd.exec_inst & _REDUCING))
    if reason == Reason.OK:
        return True
    out.append(
        Rejected(
            state.ts_ns,
            "PlaceOrder",
            cmd.account,
            reason,
            cmd.cl_ord_id,
            0,
            0,
            "",
            restriction.cause,
        )
    )
    return False


def check_amend(state: State, cmd: AmendOrder, out: list[Event]) -> bool:
    """False (and a rejection) when the restriction forbids ``cmd``: a frozen account amends
    nothing; elsewhere a non-reducing order may not grow where new exposure is refused."""
    restriction = state.restrictions.get(cmd.account)
    if restriction is None:
        return True
    reason, order = lifecycle.find_order(state, cmd.account, cmd.order_id, cmd.orig_cl_ord_id)
    if order is None:
        if restriction.trading != TradingMode.FROZEN:
            return True  # the amend's own validation names the missing order
        reason = Reason.ACCOUNT_FROZEN
    else:
        reason = _forbids(restriction, state.markets[order.symbol], order.reduce_only)
        if reason != Reason.ACCOUNT_FROZEN and not _grows(order, cmd):
            reason = Reason.OK
    if reason == Reason.OK:
        return True
    cl_ord_id = order.cl_ord_id if order is not None else cmd.orig_cl_ord_id
    order_id = order.order_id if order is not None else (cmd.order_id or 0)
    out.append(
        Rejected(
            state.ts_ns,
            "AmendOrder",
            cmd.account,
            reason,
            cl_ord_id,
            order_id,
            0,
            "",
            restriction.cause,
        )
    )
    return False


def _grows(order: Order, cmd: AmendOrder) -> bool:
    if cmd.order_qty is not None:
        return cmd.order_qty > order.order_qty
    if cmd.leaves_qty is not None:
        return cmd.leaves_qty > order.leaves_qty
    return False


def _money_reason(restriction: Restriction, withdrawal: bool) -> Reason:
    if restriction.trading == TradingMode.FROZEN:
        return Reason.ACCOUNT_FROZEN
    if withdrawal and not restriction.withdrawals:
        return Reason.WITHDRAWALS_NOT_PERMITTED
    if not withdrawal and not restriction.deposits:
        return Reason.DEPOSITS_NOT_PERMITTED
    return Reason.OK


def _check_money(
    state: State, account: int, withdrawal: bool, command: str, out: list[Event]
) -> bool:
    restriction = state.restrictions.get(account)
    if restriction is None:
        return True
    reason = _money_reason(restriction, withdrawal)
    if reason == Reason.OK:
        return True
    _reject(state, out, command, account, reason, restriction.cause)
    return False


def check_spot_trade(state: State, account: int, command: str, out: list[Event]) -> bool:
    """False (and a rejection) when the account may not buy or sell spot: frozen, close-only, or
    spot denied. Convert and staking (core.convert, core.staking) ask this."""
    restriction = state.restrictions.get(account)
    if restriction is None:
        return True
    reason = Reason.OK
    if restriction.trading == TradingMode.FROZEN:
        reason = Reason.ACCOUNT_FROZEN
    elif restriction.trading == TradingMode.CLOSE_ONLY:
        reason = Reason.ACCOUNT_CLOSE_ONLY
    elif restriction.products_denied & ProductClass.SPOT:
        reason = Reason.PRODUCT_NOT_PERMITTED
    if reason == Reason.OK:
        return True
    _reject(state, out, command, account, reason, restriction.cause)
    return False


def check_withdrawal(state: State, cmd: WithdrawalRequest, out: list[Event]) -> bool:
    return _check_money(state, cmd.account, True, "WithdrawalRequest", out)


def check_deposit(state: State, cmd: Deposit, out: list[Event]) -> bool:
    return _check_money(state, cmd.account, False, "Deposit", out)


def check_transfer(state: State, cmd: WalletTransfer, out: list[Event]) -> bool:
    """Out of the debited account as a withdrawal, into the credited one as a deposit."""
    return _check_money(state, cmd.account, True, "WalletTransfer", out) and _check_money(
        state, cmd.to_account, False, "WalletTransfer", out
    )


def _valid(cmd: SetAccountRestriction) -> bool:
    return (
        cmd.account > 0
        and cmd.trading in TradingMode._value2member_map_
        and 0 <= cmd.products_denied <= PRODUCT_CLASS_ALL
        and cmd.cause in RestrictionCause._value2member_map_
    )


def set_restriction(state: State, cmd: SetAccountRestriction, out: list[Event]) -> None:
    if not _valid(cmd):
        _reject(state, out, "SetAccountRestriction", cmd.account, Reason.RESTRICTION_INVALID, 0)
        return
    deposits = bool(cmd.deposits)
    withdrawals = bool(cmd.withdrawals)
    if cmd.trading == TradingMode.ALLOWED and cmd.products_denied == 0 and deposits and withdrawals:
        state.restrictions.pop(cmd.account, None)
        cause = int(RestrictionCause.NONE)
    else:
        restriction = Restriction(
            int(cmd.trading), cmd.products_denied, deposits, withdrawals, int(cmd.cause)
        )
        state.restrictions[cmd.account] = restriction
        cause = restriction.cause
        _cancel_forbidden(state, cmd.account, restriction, out)
    out.append(
        AccountRestricted(
            state.ts_ns,
            cmd.account,
            int(cmd.trading),
            cmd.products_denied,
            deposits,
            withdrawals,
            cause,
        )
    )


def _cancel_forbidden(
    state: State, account: int, restriction: Restriction, out: list[Event]
) -> None:
    acct = state.accounts.get(account)
    if acct is None:
        return
    for order_id in sorted(acct.orders):
        order = acct.orders.get(order_id)
        if order is None:
            continue  # ended with a linked order cancelled before it
        market = state.markets[order.symbol]
        reason = _forbids(restriction, market, order.reduce_only)
        if reason == Reason.OK:
            continue
        text = (
            TEXT_CANCEL_FROZEN
            if reason == Reason.ACCOUNT_FROZEN
            else TEXT_CANCEL_CLOSE_ONLY
            if reason == Reason.ACCOUNT_CLOSE_ONLY
            else TEXT_CANCEL_PRODUCT
        )
        placement.cancel_order(state, market, order, out, text)


def _protected_price(market: Market, side: int, band_ppm: int) -> int | None:
    if market.mark_fine is not None:
        reference = market.mark_fine // PRICE_FINE_PER_TICK
    elif market.last_price is not None:
        reference = market.last_price
    else:
        return None
    band = mul_div_floor(reference, band_ppm, PPM)
    if side > 0:
        return min(market.spec.max_price_ticks, reference + band)
    return max(1, reference - band)


def liquidate_account(state: State, cmd: LiquidateAccount, out: list[Event]) -> list[str]:
    """Cancel the account's orders and close its positions within the band; the symbols
    traded (the engine runs their trigger pass)."""
    if cmd.account <= 0 or not 0 < cmd.band_ppm < PPM:
        _reject(state, out, "LiquidateAccount", cmd.account, Reason.RESTRICTION_INVALID, 0)
        return []
    acct = state.accounts.get(cmd.account)
    held = sorted(
        (symbol, pos.qty)
        for symbol, pos in state.account_positions.get(cmd.account, {}).items()
        if pos.qty != 0 and state.markets[symbol].spec.payout != Payout.SPOT
    )
    if acct is None or (not acct.orders and not held):
        _reject(state, out, "LiquidateAccount", cmd.account, Reason.NOTHING_TO_LIQUIDATE, 0)
        return []
    lifecycle.cancel_account_orders(state, acct, out, TEXT_CANCEL_LIQUIDATION)
    symbols: list[str] = []
    for symbol, qty in held:
        market = state.markets[symbol]
        side = Side.SELL if qty > 0 else Side.BUY
        price = _protected_price(market, side, cmd.band_ppm)
        if price is None:
            placement.reject(
                state, out, "LiquidateAccount", cmd.account, Reason.NO_REFERENCE_PRICE_FOR_TRIGGER
            )
            continue
        order = PlaceOrder(
            cmd.ts_ns,
            cmd.account,
            symbol,
            side,
            None,
            OrdType.LIMIT,
            price,
            None,
            TimeInForce.IMMEDIATE_OR_CANCEL,
            ExecInst.CLOSE,
            text=cmd.text or TEXT_LIQUIDATION,
        )
        placement.place(state, order, out)
        symbols.append(symbol)
    return symbols


def audit(state: State) -> None:
    for account, restriction in state.restrictions.items():
        acct = state.accounts.get(account)
        if acct is None:
            continue
        for order in acct.orders.values():
            reason = _forbids(restriction, state.markets[order.symbol], order.reduce_only)
            invariant(
                reason == Reason.OK, f"account {account}: live order {order.order_id} {reason}"
            )
