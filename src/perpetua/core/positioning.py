"""Position settings: leverage and margin mode, risk limit, and isolated margin transfers.

Each change is checked like an order: it is refused (a named reason, nothing changed) if the
position's requirement would grow beyond the account's margin balance. Leverage must be within
what the position's risk tier allows (1 / initMarginReq). A risk limit must be ``base + n x
step`` and cover the position and its orders' exposure. Margin can be removed from an isolated
position only down to zero added margin, i.e. never below its initial margin (BitMEX).
"""

from perpetua.core import margin
from perpetua.core.commands import SetLeverage, SetRiskLimit, TransferMargin
from perpetua.core.events import Event
from perpetua.core.instruments import Payout
from perpetua.core.placement import reject
from perpetua.core.reasons import Reason
from perpetua.core.risk import LEVERAGE_E2_MAX, leverage_max_e2, tier_rates
from perpetua.core.state import Market, Position, State

__all__ = ["set_leverage", "set_risk_limit", "transfer_margin"]


def _market(state: State, symbol: str) -> Market | None:
    market = state.markets.get(symbol)
    if market is None or market.spec.payout in (Payout.SPOT, Payout.NONE):
        return None
    return market


def _fits(state: State, market: Market, pos: Position, before: int) -> tuple[bool, int]:
    """After a settings change: does the account's requirement still fit (or not grow)?"""
    after = margin.derivative_requirement(market, pos, pos.buy_value, pos.sell_value)
    acct = state.account(pos.account)
    currency = market.spec.settl_currency
    total = acct.margin_required.get(currency, 0) - pos.margin_required + after
    if after <= before:
        return True, total
    ledger = state.ledger
    balance = ledger.available(pos.account, currency)
    balance += margin.account_unrealised_pnl(state, pos.account, currency)
    return total <= balance, total


def _apply(state: State, market: Market, pos: Position) -> None:
    margin.refresh_requirement(state, market, pos)
    state.touched_positions[(market.spec.symbol, pos.account)] = pos
    market.drop_position_if_empty(pos)


def set_leverage(state: State, cmd: SetLeverage, out: list[Event]) -> None:
    market = _market(state, cmd.symbol)
    if market is None or cmd.account <= 0:
        reject(state, out, "SetLeverage", cmd.account, Reason.INSTRUMENT_UNKNOWN)
        return
    pos = market.position(cmd.account)
    if (
        not 0
        <= cmd.leverage_e2
        <= min(LEVERAGE_E2_MAX, leverage_max_e2(market.spec, pos.risk_limit))
    ):
        market.drop_position_if_empty(pos)
        reject(state, out, "SetLeverage", cmd.account, Reason.LEVERAGE_INVALID)
        return
    before = pos.margin_required
    old = (pos.leverage_e2, pos.deposit)
    pos.leverage_e2 = cmd.leverage_e2
    if cmd.leverage_e2 == 0:
        pos.deposit = 0
    ok, required = _fits(state, market, pos, before)
    if not ok:
        pos.leverage_e2, pos.deposit = old
        reject(
            state,
            out,
            "SetLeverage",
            cmd.account,
            Reason.BALANCE_INSUFFICIENT,
            required=required,
            currency=market.spec.settl_currency,
        )
        return
    _apply(state, market, pos)


def set_risk_limit(state: State, cmd: SetRiskLimit, out: list[Event]) -> None:
    market = _market(state, cmd.symbol)
    if market is None or cmd.account <= 0:
        reject(state, out, "SetRiskLimit", cmd.account, Reason.INSTRUMENT_UNKNOWN)
        return
    spec = market.spec
    pos = market.position(cmd.account)
    steps = tier_rates(spec, cmd.risk_limit).step
    on_grid = cmd.risk_limit == spec.risk_limit + steps * spec.risk_step
    exposure = margin.exposure_of(pos, pos.buy_value, pos.sell_value)
    if cmd.risk_limit < spec.risk_limit or not on_grid or exposure > cmd.risk_limit:
        market.drop_position_if_empty(pos)
        reject(state, out, "SetRiskLimit", cmd.account, Reason.RISK_LIMIT_INVALID)
        return
    before = pos.margin_required
    old = pos.risk_limit
    pos.risk_limit = cmd.risk_limit
    if pos.leverage_e2 > leverage_max_e2(spec, cmd.risk_limit):
        pos.leverage_e2 = leverage_max_e2(spec, cmd.risk_limit)
    ok, required = _fits(state, market, pos, before)
    if not ok:
        pos.risk_limit = old
        reject(
            state,
            out,
            "SetRiskLimit",
            cmd.account,
            Reason.BALANCE_INSUFFICIENT,
            required=required,
            currency=spec.settl_currency,
        )
        return
    _apply(state, market, pos)


def transfer_margin(state: State, cmd: TransferMargin, out: list[Event]) -> None:
    market = _market(state, cmd.symbol)
    pos = None if market is None else market.positions.get(cmd.account)
    if market is None or pos is None or cmd.account <= 0:
        reject(state, out, "TransferMargin", cmd.account, Reason.INSTRUMENT_UNKNOWN)
        return
    if not pos.leverage_e2 or pos.qty == 0:
        reject(state, out, "TransferMargin", cmd.account, Reason.POSITION_NOT_ISOLATED)
        return
    if cmd.amount == 0 or pos.deposit + cmd.amount < 0:
        reject(state, out, "TransferMargin", cmd.account, Reason.MARGIN_TRANSFER_INVALID)
        return
    before = pos.margin_required
    pos.deposit += cmd.amount
    ok, required = _fits(state, market, pos, before)
    if not ok:
        pos.deposit -= cmd.amount
        reject(
            state,
            out,
            "TransferMargin",
            cmd.account,
            Reason.BALANCE_INSUFFICIENT,
            required=required,
            currency=market.spec.settl_currency,
        )
        return
    _apply(state, market, pos)
