"""Hypothesis properties of the derivatives risk engine over random streams with random index
paths.

A stream trades on two to four of ETHUSDT (linear), XBTUSDT (linear), XBTUSD (inverse), ETHUSD
(quanto), XBTH27 (an inverse quarterly) and XBT_USDT (spot: its holds share the USDt wallet that
backs cross positions), by six accounts from penniless to rich. Index moves on .BETHT, .BETH,
.BXBT and .BXBTT follow a random walk with small steps, larger swings and crashes or spikes of up
to -50%/+60% that gap through liquidation and bankruptcy prices. Between commands time moves by
milliseconds, minutes or hours, so streams pass funding times (04:00, 12:00, 20:00 UTC) and often
XBTH27's expiry. Accounts change leverage (cross, isolated 1x-100x), risk limits and isolated
margin, place limit, market, stop and reduce-only orders, amend and cancel them, deposit and
withdraw; the operator changes funding interest rates.

Properties, after every command:

* ``audit.audit`` passes, including the liquidation index (every threshold registered once and
  equal to the one recomputed now), and multi-market cross accounts' thresholds are fresh too;
* per instrument, long and short contracts net to zero, the insurance fund (INSURANCE) counting
  as an account, and it is the only system account that holds positions;
* per currency, money is conserved: ``audit.conservation_totals`` equals DEPOSIT minus
  WITHDRAWAL_COMPLETE transfers seen in the events, whatever trades, fees, funding,
  liquidations, ADL and settlements happened;
* the engine leaves nothing crossed: every user position on a market with a mark is above its
  liquidation point (its cushion plus unrealised PnL at the mark is not negative). So no user
  account has negative equity (wallet plus unrealised PnL at the mark) in any currency, not even
  right after a liquidation or ADL: takeover is at the bankruptcy price, which leaves the owner
  its isolated margins and holds, and a loss beyond the wallet is covered by the fund;
* replay: the same commands applied to a fresh engine, restored from snapshots at random points
  (sometimes through msgpack), give identical events and ``state_hash()`` after every command.

Streams are built in one pass that tracks the index levels, so orders are priced near the
current index. Orders referenced by amend and cancel (``-k``: the k-th newest live order) and
the owner placeholder (account 0) are resolved when applied; the concrete commands are printed
on failure.
"""

import os
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from perpetua.core import audit, liquidation, margin
from perpetua.core.calendar import utc_ns
from perpetua.core.catalogue import by_symbol, default_catalogue, quarterly_expiry_ns
from perpetua.core.commands import (
    AmendOrder,
    CancelOrders,
    Deposit,
    IndexPrice,
    PlaceOrder,
    SetInterestRate,
    SetLeverage,
    SetRiskLimit,
    Tick,
    TransferMargin,
    WithdrawalComplete,
    WithdrawalRequest,
)
from perpetua.core.engine import Engine
from perpetua.core.enums import ExecInst, OrdType, Side, TimeInForce
from perpetua.core.events import Deleveraged, PositionLiquidated, Rejected, Transfer
from perpetua.core.instruments import Payout
from perpetua.core.ledger import INSURANCE, TransferCode
from perpetua.core.reasons import Reason
from perpetua.core.state import State

pytestmark = pytest.mark.slow  # real processes or long randomised runs; CI runs them all

CATALOGUE = default_catalogue()
SPECS = by_symbol(CATALOGUE)
EXAMPLES_SCALE = int(os.environ.get("PERPETUA_EXAMPLES_SCALE", "1"))
PROFILE = settings(
    deadline=None,
    print_blob=True,
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
)
HOUR_NS = 3_600 * 10**9
MINUTE_NS = 60 * 10**9
STEP_NS = 1_000_000
EXPIRY_NS = quarterly_expiry_ns(2027, 1)  # XBTH27: 2027-03-26 12:00 UTC
# Stream starts: 34 h before expiry (several funding times first), or 3 h before.
STARTS_NS = (utc_ns(2027, 3, 25) + 2 * HOUR_NS, EXPIRY_NS - 3 * HOUR_NS)
ACCOUNTS = (1, 2, 3, 4, 5, 6)
RICH = 6  # always funded: a market maker that gives liquidations something to fill against
# index -> starting level in ticks of its markets (every market on an index shares its tick)
INDEX_START = {".BETHT": 60_000, ".BETH": 60_000, ".BXBT": 600_000, ".BXBTT": 120_000}
# symbol -> (index, lots per order at most)
MARKETS = {
    "ETHUSDT": (".BETHT", 40),
    "XBTUSDT": (".BXBTT", 40),
    "XBTUSD": (".BXBT", 40),
    "ETHUSD": (".BETH", 30),
    "XBTH27": (".BXBT", 40),
    "XBT_USDT": (".BXBTT", 20),
}
DERIVATIVES = tuple(s for s in MARKETS if SPECS[s].payout != Payout.SPOT)
BALANCES = {
    "XBt": (0, 0, 20_000, 300_000, 3_000_000, 30_000_000),
    "USDt": (0, 0, 2_000_000, 20_000_000, 200_000_000, 2_000_000_000),
}
RICH_BALANCE = {"XBt": 10**10, "USDt": 10**13}
LEVERAGES_E2 = (0, 0, 0, 100, 200, 300, 500, 1_000, 2_000, 2_500, 5_000, 10_000)
EQUITY_TOLERANCE = 2  # minor units per open position: truncation of values at the mark


# Streams -----------------------------------------------------------------------------------


def _index_move(draw: Any, level: int) -> int:
    kind = draw(st.sampled_from(("small", "small", "small", "swing", "swing", "gap")))
    if kind == "small":
        permille = draw(st.integers(-10, 10))
    elif kind == "swing":
        permille = draw(st.integers(-80, 80))
    else:
        permille = draw(st.sampled_from((-500, -350, -250, -150, 150, 250, 400, 600)))
    return max(2_000, min(5_000_000, level + level * permille // 1000))


_LOTS = (1, 1, 2, 3, 5, 8, 13, 20, 40)


def _quotes(symbol: str, level: int, depth: int) -> list[PlaceOrder]:
    """The rich account's bid and ask around ``level``: liquidity for takers and the fund."""
    spec = SPECS[symbol]
    qty = depth * MARKETS[symbol][1] * spec.lot_size
    spread = max(1, level // 1000)
    return [
        PlaceOrder(0, RICH, symbol, Side.BUY, qty, OrdType.LIMIT, price=level - spread),
        PlaceOrder(0, RICH, symbol, Side.SELL, qty, OrdType.LIMIT, price=level + spread),
    ]


def _order(draw: Any, symbol: str, level: int) -> PlaceOrder:
    spec = SPECS[symbol]
    spot = spec.payout == Payout.SPOT
    account = draw(st.sampled_from((*ACCOUNTS, RICH)))
    side = draw(st.sampled_from((Side.BUY, Side.SELL)))
    qty = min(draw(st.sampled_from(_LOTS)), MARKETS[symbol][1]) * spec.lot_size
    scale = draw(st.sampled_from((1, 1, 1, max(1, level // 400))))
    price = max(1, level + draw(st.integers(-4, 6)) * scale * side)  # often crosses
    kind = draw(
        st.sampled_from(
            (
                "limit",
                "limit",
                "limit",
                "limit",
                "limit",
                "market",
                "market",
                "stop",
                "ioc",
                "reduce",
                "close",
            )
        )
    )
    if spot and kind in ("reduce", "close"):
        kind = "limit"
    if kind == "market":
        return PlaceOrder(0, account, symbol, side, qty, OrdType.MARKET)
    if kind == "stop":
        ord_type = draw(st.sampled_from((OrdType.STOP, OrdType.STOP_LIMIT)))
        away = level // 50 * (1 if side == Side.BUY else -1)
        stop_px = max(1, level + away)
        limit = max(1, stop_px + away // 4) if ord_type == OrdType.STOP_LIMIT else None
        trigger = 0 if spot else draw(st.sampled_from((0, ExecInst.MARK_PRICE)))
        return PlaceOrder(
            0, account, symbol, side, qty, ord_type, price=limit, stop_px=stop_px, exec_inst=trigger
        )
    if kind == "ioc":
        tif = draw(st.sampled_from((TimeInForce.IMMEDIATE_OR_CANCEL, TimeInForce.FILL_OR_KILL)))
        return PlaceOrder(
            0, account, symbol, side, qty, OrdType.LIMIT, price=price, time_in_force=tif
        )
    if kind == "reduce":
        return PlaceOrder(
            0,
            account,
            symbol,
            side,
            qty,
            OrdType.LIMIT,
            price=price,
            exec_inst=ExecInst.REDUCE_ONLY,
        )
    if kind == "close":
        return PlaceOrder(0, account, symbol, None, None, OrdType.MARKET, exec_inst=ExecInst.CLOSE)
    return PlaceOrder(0, account, symbol, side, qty, OrdType.LIMIT, price=price)


def _setting(draw: Any, symbol: str) -> object:
    spec = SPECS[symbol]
    account = draw(st.sampled_from(ACCOUNTS))
    kind = draw(
        st.sampled_from(
            ("leverage", "leverage", "leverage", "margin", "risk_limit", "interest", "interest")
        )
    )
    if kind == "leverage":
        return SetLeverage(0, account, symbol, draw(st.sampled_from(LEVERAGES_E2)))
    if kind == "margin":
        unit = 10**5 if spec.settl_currency == "XBt" else 10**6
        return TransferMargin(
            0, account, symbol, draw(st.sampled_from((-50, -5, -1, 1, 5, 50))) * unit
        )
    if kind == "risk_limit":
        return SetRiskLimit(
            0, account, symbol, spec.risk_limit + draw(st.integers(0, 2)) * spec.risk_step
        )
    return SetInterestRate(
        0, symbol, draw(st.sampled_from((0, 100_000, -100_000, 1_000_000, -2_000_000)))
    )


def _money(draw: Any, serial: int) -> object:
    account = draw(st.sampled_from(ACCOUNTS))
    currency = draw(st.sampled_from(tuple(BALANCES)))
    kind = draw(st.sampled_from(("deposit", "deposit", "withdraw")))
    if kind == "deposit":
        amount = draw(st.sampled_from(BALANCES[currency][2:]))
        return Deposit(0, account, currency, amount, f"top-{serial}")
    amount = draw(st.sampled_from(BALANCES[currency][2:]))
    return WithdrawalRequest(0, account, currency, amount, 0, f"w-{serial}")


_GAPS_NS = (0,) * 24 + (
    3 * MINUTE_NS,
    17 * MINUTE_NS,
    HOUR_NS,
    2 * HOUR_NS,
    3 * HOUR_NS,
    8 * HOUR_NS,
)
_KINDS = (
    ("order",) * 10
    + ("index",) * 5
    + ("setting",) * 3
    + ("quote", "tick", "tick", "cancel", "amend", "money")
)


@st.composite
def streams(draw: Any, max_size: int = 70) -> tuple[int, list[tuple[int, object]]]:
    """(start time, [(gap before the command in ns, command)])."""
    start_ns = draw(st.sampled_from(STARTS_NS))
    now_ns = start_ns
    symbols = tuple(
        draw(st.lists(st.sampled_from(tuple(MARKETS)), min_size=2, max_size=4, unique=True))
    )
    indices = sorted({MARKETS[s][0] for s in symbols})
    levels = dict(INDEX_START)
    out: list[tuple[int, object]] = []
    for account in ACCOUNTS:
        for currency, tiers in BALANCES.items():
            amount = RICH_BALANCE[currency] if account == RICH else draw(st.sampled_from(tiers))
            if amount:
                out.append((0, Deposit(0, account, currency, amount, f"seed-{account}-{currency}")))
    for index in indices:  # sometimes an index arrives only later: positions open unmarked
        if draw(st.integers(0, 4)):
            out.append((0, _index_price(index, levels[index])))
    for symbol in symbols:
        out.extend((0, quote) for quote in _quotes(symbol, levels[MARKETS[symbol][0]], 2))
    for serial in range(draw(st.integers(20, max_size))):
        kind = draw(st.sampled_from(_KINDS))
        gap_ns = draw(st.sampled_from(_GAPS_NS))
        now_ns += gap_ns + STEP_NS
        live = [s for s in symbols if now_ns < SPECS[s].expiry_ns or not SPECS[s].expiry_ns]
        symbol = draw(st.sampled_from(live or symbols))  # mostly not a settled future
        index = MARKETS[symbol][0]
        command: object
        if kind == "order":
            command = _order(draw, symbol, levels[index])
        elif kind == "quote":
            bid, command = _quotes(symbol, levels[index], 1)
            out.append((gap_ns, bid))
            gap_ns = 0
        elif kind == "index":
            levels[index] = _index_move(draw, levels[index])
            command = _index_price(index, levels[index])
        elif kind == "setting" and symbol in DERIVATIVES:
            command = _setting(draw, symbol)
        elif kind == "cancel":
            command = CancelOrders(0, 0, (draw(st.integers(-6, -1)),))
        elif kind == "amend":
            command = AmendOrder(
                0,
                0,
                draw(st.integers(-6, -1)),
                price=max(1, levels[index] + draw(st.integers(-8, 8))),
            )
        elif kind == "money":
            command = _money(draw, serial)
        else:
            command = Tick(0)
        out.append((gap_ns, command))
    if draw(st.booleans()):  # a withdrawal completes (if it was requested and not refused)
        out.append((0, WithdrawalComplete(0, f"w-{draw(st.integers(0, max_size))}")))
    return start_ns, out


def _index_price(index: str, level: int) -> IndexPrice:
    priced_by = SPECS[next(s for s, (i, _) in MARKETS.items() if i == index)]
    return IndexPrice(0, index, level * priced_by.tick_num, priced_by.tick_den)


# Running ----------------------------------------------------------------------------------


def _resolve(state: State, ts_ns: int, command: Any) -> Any:
    """Stamp ``ts_ns``; ``-k`` order references become the k-th newest live order and account
    0 its owner."""
    command = command._replace(ts_ns=ts_ns)
    if isinstance(command, (AmendOrder, CancelOrders)):
        live = sorted(state.orders)
        reference = command.order_id if isinstance(command, AmendOrder) else command.order_ids[0]
        order_id = live[(reference + 1) % len(live) - 1] if live else 10**6
        order = state.orders.get(order_id)
        owner = order.account if order is not None else 1
        if isinstance(command, AmendOrder):
            command = command._replace(order_id=order_id, account=owner)
        else:
            command = command._replace(order_ids=(order_id,), account=owner)
    return command


def concrete(
    start_ns: int, stream: list[tuple[int, object]]
) -> tuple[Engine, list[Any], list[list[object]]]:
    """Apply ``stream`` to a fresh engine, checking every property after every command."""
    engine = Engine(CATALOGUE)
    watch = Watch()
    commands: list[Any] = []
    outputs: list[list[object]] = []
    ts_ns = start_ns
    for gap_ns, symbolic in stream:
        ts_ns += STEP_NS + gap_ns
        command = _resolve(engine.state, ts_ns, symbolic)
        note(repr(command))
        events = engine.apply(command)
        commands.append(command)
        outputs.append(events)
        watch.check(engine.state, events)
    return engine, commands, outputs


class Watch:
    """Checks the per-command properties; counts what happened, for the coverage test."""

    def __init__(self) -> None:
        self.external: dict[str, int] = {}

    def check(self, state: State, events: list[object]) -> None:
        audit.audit(state)
        self._conservation(state, events)
        self._contracts(state)
        self._thresholds_fresh(state)
        self._nothing_crossed(state, events)

    def _conservation(self, state: State, events: list[object]) -> None:
        for e in events:
            if type(e) is not Transfer:
                continue
            if e.code == TransferCode.DEPOSIT:
                self.external[e.currency] = self.external.get(e.currency, 0) + e.amount
            elif e.code == TransferCode.WITHDRAWAL_COMPLETE:
                self.external[e.currency] = self.external.get(e.currency, 0) - e.amount
        for currency, total in audit.conservation_totals(state).items():
            assert total == self.external.get(currency, 0), f"{currency} not conserved"

    @staticmethod
    def _contracts(state: State) -> None:
        for symbol, market in state.markets.items():
            longs = sum(p.qty for p in market.positions.values() if p.qty > 0)
            shorts = sum(p.qty for p in market.positions.values() if p.qty < 0)
            assert longs + shorts == 0, f"{symbol}: {longs} long vs {shorts} short"
            system = {a for a, p in market.positions.items() if a < 0 and p.qty}
            assert system <= {INSURANCE}, f"{symbol}: system accounts {system} hold positions"

    @staticmethod
    def _thresholds_fresh(state: State) -> None:
        """The audit recomputes isolated and single-market cross thresholds; after a command
        the multi-market cross ones are fresh too (a mark move in one market re-derives them in
        the others)."""
        for symbol, market in state.markets.items():
            for account, pos in market.positions.items():
                assert pos.liq_fine == liquidation._threshold(state, market, pos), (
                    f"{symbol}/{account}: stale liquidation threshold"
                )

    @staticmethod
    def _nothing_crossed(state: State, events: list[object]) -> None:
        """Every user position is above its liquidation point; so every equity is >= 0."""
        ran = any(type(e) in (PositionLiquidated, Deleveraged) for e in events)
        equity: dict[tuple[int, str], int] = {}
        positions: dict[tuple[int, str], int] = {}
        for symbol, market in state.markets.items():
            if market.spec.payout == Payout.SPOT:
                continue
            currency = market.spec.settl_currency
            for account, pos in market.positions.items():
                if account <= 0 or pos.qty == 0:
                    continue
                key = (account, currency)
                positions[key] = positions.get(key, 0) + 1
                upnl = margin.unrealised_pnl(market, pos)
                equity[key] = equity.get(key, 0) + upnl
                if market.mark_fine is None:
                    continue
                room = liquidation.cushion(state, market, pos) + upnl
                assert room >= -EQUITY_TOLERANCE, (
                    f"{symbol} account {account} left crossed: cushion + uPnL = {room}, "
                    f"liquidation ran this command: {ran}"
                )
        for (account, currency), upnl in equity.items():
            total = state.ledger.balance(account, currency) + upnl
            tolerance = EQUITY_TOLERANCE * positions[(account, currency)]
            assert total >= -tolerance, (
                f"account {account} {currency} equity {total} < 0 (liquidation ran: {ran})"
            )


# Properties -------------------------------------------------------------------------------


@settings(PROFILE, max_examples=150 * EXAMPLES_SCALE)
@given(streams())
def test_risk_invariants_hold_after_every_command(
    case: tuple[int, list[tuple[int, object]]],
) -> None:
    concrete(*case)


def _restored(engine: Engine, through_msgpack: bool) -> Engine:
    image: Any = engine.snapshot()
    if through_msgpack:
        image = msgspec.msgpack.decode(msgspec.msgpack.encode(image))
    copy = Engine(CATALOGUE)
    copy.restore(image)
    return copy


@settings(PROFILE, max_examples=40 * EXAMPLES_SCALE)
@given(streams(), st.lists(st.tuples(st.integers(0, 90), st.booleans()), max_size=3))
def test_replay_and_snapshot_roundtrip_give_same_events_and_hash(
    case: tuple[int, list[tuple[int, object]]], cuts: list[tuple[int, bool]]
) -> None:
    """Replay on a fresh engine, restoring a copy at random points (none: a plain replay)."""
    first, commands, outputs = concrete(*case)
    again = Engine(CATALOGUE)
    where = {position % len(commands): via for position, via in cuts}
    for position, (command, events) in enumerate(zip(commands, outputs, strict=True)):
        if position in where:
            before = again.state_hash()
            again = _restored(again, where[position])
            assert again.state_hash() == before
            audit.audit(again.state)
        assert again.apply(command) == events, f"command {position} diverged: {command}"
    assert again.state_hash() == first.state_hash()


def _cross_account_in_two_markets() -> tuple[Engine, int]:
    """Account 1, cross, long ETHUSD (opened first) and XBTUSD, both a little under water."""
    engine = Engine(CATALOGUE)
    ts_ns = STARTS_NS[0]
    setup = [
        Deposit(0, 1, "XBt", 2_000_000, "d1"),
        Deposit(0, 2, "XBt", 10**10, "d2"),
        IndexPrice(0, ".BXBT", 600_000, 10),
        IndexPrice(0, ".BETH", 60_000, 20),
        PlaceOrder(0, 2, "ETHUSD", Side.SELL, 20, OrdType.LIMIT, price=60_000),
        PlaceOrder(0, 1, "ETHUSD", Side.BUY, 20, OrdType.LIMIT, price=60_000),
        PlaceOrder(0, 2, "XBTUSD", Side.SELL, 3000, OrdType.LIMIT, price=600_000),
        PlaceOrder(0, 1, "XBTUSD", Side.BUY, 3000, OrdType.LIMIT, price=600_000),
        IndexPrice(0, ".BXBT", 590_000, 10),
        IndexPrice(0, ".BETH", 59_000, 20),
    ]
    for command in setup:
        ts_ns += STEP_NS
        engine.apply(command._replace(ts_ns=ts_ns))  # type: ignore[attr-defined]
    assert list(engine.state.account_positions[1]) == ["ETHUSD", "XBTUSD"]
    return engine, ts_ns


def test_withdrawal_leaves_cross_positions_their_unrealised_loss() -> None:
    """Found by the stream property: a request for everything above the margin requirement
    ignored the cross positions' unrealised loss and liquidated them in the same command."""
    engine, ts_ns = _cross_account_in_two_markets()
    state = engine.state
    loss = -margin.account_unrealised_pnl(state, 1, "XBt")
    free = state.ledger.available(1, "XBt") - state.accounts[1].margin_required["XBt"]
    assert loss > 0
    refused = engine.apply(WithdrawalRequest(ts_ns + STEP_NS, 1, "XBt", free - loss + 1, 0, "w"))
    assert [e.reason for e in refused if isinstance(e, Rejected)] == [Reason.BALANCE_INSUFFICIENT]
    events = engine.apply(WithdrawalRequest(ts_ns + 2 * STEP_NS, 1, "XBt", free - loss, 0, "w"))
    assert not [e for e in events if isinstance(e, (Rejected, PositionLiquidated))]


def test_restored_cross_account_liquidates_in_the_same_order() -> None:
    """Found by the replay property: a restored account's positions come back in catalogue
    order, not the order they were opened in, and the follow-up scanned its markets in that
    order, so after a restart a multi-market cross account was liquidated in another order (other
    events, other ``state_hash``). Buying XBTH27 far above its mark crosses both positions."""
    engine, ts_ns = _cross_account_in_two_markets()
    copy = _restored(engine, through_msgpack=True)
    ask = PlaceOrder(ts_ns + STEP_NS, 2, "XBTH27", Side.SELL, 3000, OrdType.LIMIT, price=900_000)
    bid = PlaceOrder(ts_ns + 2 * STEP_NS, 1, "XBTH27", Side.BUY, 3000, OrdType.LIMIT, price=900_000)
    for command in (ask, bid):
        events = engine.apply(command)
        assert copy.apply(command) == events
    assert [e.symbol for e in events if isinstance(e, PositionLiquidated)] == [
        "ETHUSD",
        "XBTH27",
        "XBTUSD",
    ]
    assert copy.state_hash() == engine.state_hash()


def test_fund_sells_into_bids_above_bankruptcy_before_deleveraging() -> None:
    """Found by bench/bench_risk.py: when the mark gapped past the fund's entry and its loss at
    the mark exceeded the fund, it deleveraged at once, though bids above the bankruptcy price
    rested in the book (§7.5: ADL only for what cannot fill by the bankruptcy price)."""
    engine = Engine(CATALOGUE)
    ts_ns = STARTS_NS[0]

    def apply(command: Any) -> list[object]:
        nonlocal ts_ns
        ts_ns += STEP_NS
        return engine.apply(command._replace(ts_ns=ts_ns))

    apply(SetInterestRate(0, "ETHUSDT", 0))
    for account, amount in ((1, 100 * 10**6), (2, 10**11), (3, 10**11)):
        apply(Deposit(0, account, "USDt", amount, f"d{account}"))
    apply(IndexPrice(0, ".BETHT", 2000, 1))
    apply(SetLeverage(0, 1, "ETHUSDT", 1_000))
    apply(PlaceOrder(0, 2, "ETHUSDT", Side.SELL, 2000, OrdType.LIMIT, price=40_000))
    opened = apply(PlaceOrder(0, 1, "ETHUSDT", Side.BUY, 2000, OrdType.LIMIT, price=40_000))
    bankrupt = liquidation.published_prices(
        engine.state, engine.state.markets["ETHUSDT"], engine.state.markets["ETHUSDT"].positions[1]
    )[0]
    assert opened and bankrupt is not None
    apply(PlaceOrder(0, 3, "ETHUSDT", Side.BUY, 2000, OrdType.LIMIT, price=bankrupt + 20))
    events = apply(IndexPrice(0, ".BETHT", 1000, 1))  # far below bankruptcy; the fund is empty
    assert [e.account for e in events if isinstance(e, PositionLiquidated)] == [1]
    assert not [e for e in events if isinstance(e, Deleveraged)]
    assert engine.state.markets["ETHUSDT"].positions[3].qty == 2000  # bought from the fund
    assert engine.state.ledger.balance(INSURANCE, "USDt") > 0  # surplus and fee, no loss
    audit.audit(engine.state)


def test_interest_rate_before_the_first_index_re_derives_thresholds() -> None:
    """Found by the stream property: before a market's first index ``SetInterestRate`` is also
    its funding rate, which is in the payers' maintenance margin, and their liquidation
    thresholds went stale ("stale liquidation threshold" in the audit)."""
    engine = Engine(CATALOGUE)
    commands = [
        Deposit(0, 1, "USDt", 10**9, "d1"),
        Deposit(0, 2, "USDt", 10**9, "d2"),
        PlaceOrder(0, 1, "ETHUSDT", Side.BUY, 1000, OrdType.LIMIT, price=60_000),
        PlaceOrder(0, 2, "ETHUSDT", Side.SELL, 1000, OrdType.LIMIT, price=60_000),
        SetInterestRate(0, "ETHUSDT", -100_000),  # now the short pays the next funding
    ]
    for n, command in enumerate(commands, 1):
        engine.apply(command._replace(ts_ns=STARTS_NS[0] + n))  # type: ignore[attr-defined]
        audit.audit(engine.state)
