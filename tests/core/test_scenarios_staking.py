"""Scenarios for trading costs and the exchange token. BMEX staking: stake, unstake with
cooling-off and cancel, daily rewards from the rewards account, the staking tier's fee discount
on the next fill; volume tiers changing the next fill's fee; convert at a quoted price against
the desk; a TradFi holiday and half-day. Every line is followed by the full audit
(conservation, STAKING == stakes).
See ``test_scenarios.py`` for how lines are checked.
"""

from typing import Any

import pytest

from perpetua.core.calendar import days_from_civil, utc_ns
from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import (
    AmendOrder,
    Convert,
    FundConvertDesk,
    FundStakingRewards,
    IndexPrice,
    SetAccountRestriction,
    SetFeeDiscount,
    SetFeeTier,
    SetInstrumentState,
    SetInterestRate,
    SetTradingCalendar,
    Stake,
    Tick,
    UnstakeCancel,
    UnstakeRequest,
)
from perpetua.core.engine import Engine
from perpetua.core.enums import OrdType, ProductClass, Side, TradingMode
from perpetua.core.events import (
    Converted,
    FeeSettingsChanged,
    Funding,
    OrderEvent,
    StakingChanged,
    TradingCalendarChanged,
    Transfer,
    UnstakingUpdated,
)
from perpetua.core.ledger import CONVERT_DESK, EXTERNAL, STAKING, STAKING_REWARDS, TransferCode
from perpetua.core.limits import DAY_NS
from perpetua.core.reasons import Reason
from perpetua.core.staking import UNSTAKING_COOLING_OFF_NS
from tests.core.test_scenarios import (
    FUNDING,
    T0,
    Check,
    Ev,
    Line,
    at,
    buy,
    cxl,
    fill,
    new,
    none,
    place,
    rej,
    run,
    sell,
    triggered,
)

P = 200_000  # $20,000.0 in XBTUSD ticks
BMEX = 1_000_000  # BMEx per BMEX
START_BMEX = 1_000_000 * BMEX
MIDNIGHT = utc_ns(2026, 3, 3)
MIDNIGHT_2 = MIDNIGHT + DAY_NS
# 100 XBTUSD at $20,000 is worth 500,000 XBt; the taker pays 0.075% at tier 0.
VALUE = 500_000
FEE_TIER_0 = 375
FEE_TIER_1 = 250  # 0.05%
FEE_STAKING_TIER_2 = 338  # 0.075% less 10% = 0.0675%, rounded up
# A day's reward on 10,000 BMEX at 3% a year: floor(10_000e6 * 30_000 / (1e6 * 365)).
REWARD_10K = 821_917


def stake_ev(account: int, staked: int, unstaking: int = 0, eligible: int = 0, **kw: Any) -> Ev:
    return Ev(
        StakingChanged,
        account=account,
        staked=staked,
        unstaking=unstaking,
        eligible=eligible,
        **kw,
    )


def moved(debit: int, credit: int, amount: int, code: TransferCode) -> Ev:
    return Ev(Transfer, debit_account=debit, credit_account=credit, amount=amount, code=code)


def balance(account: int, amount: int, currency: str = "BMEx") -> Check:
    return Check(
        f"balance {account} {currency} == {amount}",
        lambda r: r.balance(account, currency) == amount,
    )


def unstaking(rid: str, status: str, **kw: Any) -> Ev:
    return Ev(UnstakingUpdated, request_id=rid, status=status, **kw)


def trade(taker: int, cid: str, comm: int) -> list[Line]:
    """Account 4 rests 100 XBTUSD; ``taker`` lifts it and pays ``comm``."""
    return [
        (sell(4, cid + "-m", 100, P), [new(cid + "-m")]),
        (
            buy(taker, cid, 100, P),
            [
                new(cid),
                fill(cid + "-m", 100, P, leaves=0),
                fill(cid, 100, P, leaves=0, exec_comm=comm),
            ],
        ),
    ]


SCENARIOS: dict[str, list[Line]] = {
    "a stake earns the discount and the reward from the next full day": [
        (
            FundStakingRewards(0, "BMEx", 1_000 * BMEX, "rewards-1"),
            [moved(EXTERNAL, STAKING_REWARDS, 1_000 * BMEX, TransferCode.STAKING_REWARDS_FUNDING)],
        ),
        (
            Stake(0, 1, "BMEx", 10_000 * BMEX),
            [
                moved(1, STAKING, 10_000 * BMEX, TransferCode.STAKE),
                stake_ev(1, 10_000 * BMEX, tier=0),
                none(FeeSettingsChanged),
                balance(1, START_BMEX - 10_000 * BMEX),
                balance(STAKING, 10_000 * BMEX),
            ],
        ),
        *trade(1, "before", FEE_TIER_0),  # the stake counts from the next full day
        (
            at(MIDNIGHT, Tick(0)),
            [
                none(Transfer),  # nothing was staked all of the day that ended
                stake_ev(1, 10_000 * BMEX, eligible=10_000 * BMEX, tier=2),
                Ev(FeeSettingsChanged, account=1, discount_ppm=100_000),
            ],
        ),
        *trade(1, "after", FEE_STAKING_TIER_2),
        (
            at(MIDNIGHT_2, Tick(0)),
            [
                moved(STAKING_REWARDS, 1, REWARD_10K, TransferCode.STAKING_REWARD),
                none(StakingChanged),
                none(FeeSettingsChanged),
                balance(1, START_BMEX - 10_000 * BMEX + REWARD_10K),
                balance(STAKING_REWARDS, 1_000 * BMEX - REWARD_10K),
            ],
        ),
    ],
    "unstaking cools off, can be cancelled, and is paid back at its release time": [
        (Stake(0, 1, "BMEx", 1_000 * BMEX), [stake_ev(1, 1_000 * BMEX)]),
        (
            UnstakeRequest(0, 1, "BMEx", 400 * BMEX, "u1"),
            [
                unstaking("u1", "Pending", amount=400 * BMEX),
                stake_ev(1, 600 * BMEX, unstaking=400 * BMEX),
                none(Transfer),  # still locked while it cools off
                balance(STAKING, 1_000 * BMEX),
            ],
        ),
        (UnstakeRequest(0, 1, "BMEx", 700 * BMEX, "u2"), [rej(Reason.STAKED_INSUFFICIENT)]),
        (UnstakeRequest(0, 1, "BMEx", 1, "u1"), [rej(Reason.TRANSFER_ID_DUPLICATE)]),
        (UnstakeCancel(0, 2, "u1"), [rej(Reason.UNSTAKING_NOT_FOUND)]),  # not its request
        (
            UnstakeCancel(0, 1, "u1"),
            [unstaking("u1", "Canceled"), stake_ev(1, 1_000 * BMEX), none(Transfer)],
        ),
        (UnstakeCancel(0, 1, "u1"), [rej(Reason.UNSTAKING_NOT_FOUND)]),
        (
            at(T0 + DAY_NS // 4, UnstakeRequest(0, 1, "BMEx", 1_000 * BMEX, "u3")),
            [unstaking("u3", "Pending", release_ns=T0 + DAY_NS // 4 + UNSTAKING_COOLING_OFF_NS)],
        ),
        (
            at(T0 + DAY_NS // 4 + UNSTAKING_COOLING_OFF_NS - 1, Tick(0)),
            [none(UnstakingUpdated), balance(1, START_BMEX - 1_000 * BMEX)],
        ),
        (
            at(T0 + DAY_NS // 4 + UNSTAKING_COOLING_OFF_NS, Tick(0)),
            [
                moved(STAKING, 1, 1_000 * BMEX, TransferCode.UNSTAKE),
                unstaking("u3", "Released"),
                stake_ev(1, 0),
                balance(1, START_BMEX),
                balance(STAKING, 0),
            ],
        ),
    ],
    "an unstaking request lowers the discount at once; a cancel waits for the day": [
        (Stake(0, 1, "BMEx", 10_000 * BMEX), []),
        (at(MIDNIGHT, Tick(0)), [Ev(FeeSettingsChanged, account=1, discount_ppm=100_000)]),
        (
            UnstakeRequest(0, 1, "BMEx", 9_500 * BMEX, "u"),
            [
                stake_ev(1, 500 * BMEX, 9_500 * BMEX, eligible=500 * BMEX, tier=0),
                Ev(FeeSettingsChanged, account=1, discount_ppm=0),
            ],
        ),
        *trade(1, "t1", FEE_TIER_0),
        (UnstakeCancel(0, 1, "u"), [none(FeeSettingsChanged)]),
        (
            at(MIDNIGHT_2, Tick(0)),
            [
                none(Transfer),  # the rewards account is empty: nothing to pay from
                Ev(FeeSettingsChanged, account=1, discount_ppm=100_000),
            ],
        ),
        *trade(1, "t2", FEE_STAKING_TIER_2),
    ],
    "the larger of the operator's and the staking discount applies": [
        (SetFeeDiscount(0, 1, 300_000), [Ev(FeeSettingsChanged, discount_ppm=300_000)]),
        (Stake(0, 1, "BMEx", 10_000 * BMEX), []),
        (at(MIDNIGHT, Tick(0)), [Ev(FeeSettingsChanged, account=1, discount_ppm=300_000)]),
        *trade(1, "t", 263),  # 0.075% less 30% = 0.0525%: 262.5, rounded up
        (SetFeeDiscount(0, 1, 0), [Ev(FeeSettingsChanged, discount_ppm=100_000)]),
    ],
    "short rewards are shared pro rata, never overdrawn": [
        (FundStakingRewards(0, "BMEx", 1_000_000, "r"), []),
        (Stake(0, 1, "BMEx", 10_000 * BMEX), []),
        (Stake(0, 2, "BMEx", 10_000 * BMEX), []),
        (at(MIDNIGHT, Tick(0)), [none(Transfer)]),
        (
            at(MIDNIGHT_2, Tick(0)),
            [  # owed 821,917 each, 1,643,834 in all; 1,000,000 there: each gets 500,000 floored
                moved(STAKING_REWARDS, 1, 500_000, TransferCode.STAKING_REWARD),
                moved(STAKING_REWARDS, 2, 500_000, TransferCode.STAKING_REWARD),
                balance(STAKING_REWARDS, 0),
            ],
        ),
    ],
    "a volume tier lowers the fee of the next fill": [
        *trade(1, "t0", FEE_TIER_0),
        (SetFeeTier(0, 1, 1), [Ev(FeeSettingsChanged, account=1, tier=1, discount_ppm=0)]),
        *trade(1, "t1", FEE_TIER_1),
    ],
    "bad staking commands change nothing": [
        (Stake(0, 1, "XBt", 1), [rej(Reason.STAKING_CURRENCY_INVALID)]),
        (Stake(0, 1, "BMEx", 0), [rej(Reason.AMOUNT_MUST_BE_POSITIVE)]),
        (Stake(0, 1, "BMEx", START_BMEX + 1), [rej(Reason.BALANCE_INSUFFICIENT)]),
        (Stake(0, 9, "BMEx", 1), [rej(Reason.BALANCE_INSUFFICIENT)]),
        (UnstakeRequest(0, 1, "BMEx", 1, "x"), [rej(Reason.STAKED_INSUFFICIENT)]),
        (UnstakeRequest(0, 1, "BMEx", 1, ""), [rej(Reason.UNSTAKING_ID_INVALID)]),
        (FundStakingRewards(0, "XBt", 1, "r"), [rej(Reason.STAKING_CURRENCY_INVALID)]),
        (
            FundStakingRewards(0, "BMEx", 1, "r"),
            [moved(EXTERNAL, STAKING_REWARDS, 1, TransferCode.STAKING_REWARDS_FUNDING)],
        ),
        (FundStakingRewards(0, "BMEx", 1, "r"), [rej(Reason.TRANSFER_ID_DUPLICATE)]),
        (Tick(0), [Check("no stake recorded", lambda r: r.balance(STAKING, "BMEx") == 0)]),
    ],
    "a restricted account cannot stake or restake, but can unstake": [
        (Stake(0, 1, "BMEx", 10_000 * BMEX), []),
        (UnstakeRequest(0, 1, "BMEx", 1_000 * BMEX, "u1"), []),
        (SetAccountRestriction(0, 1, TradingMode.FROZEN), []),
        (Stake(0, 1, "BMEx", BMEX), [rej(Reason.ACCOUNT_FROZEN), none(Transfer)]),
        (UnstakeCancel(0, 1, "u1"), [rej(Reason.ACCOUNT_FROZEN), none(UnstakingUpdated)]),
        (SetAccountRestriction(0, 1, TradingMode.CLOSE_ONLY), []),
        (Stake(0, 1, "BMEx", BMEX), [rej(Reason.ACCOUNT_CLOSE_ONLY)]),
        (SetAccountRestriction(0, 1, TradingMode.ALLOWED, ProductClass.SPOT), []),
        (Stake(0, 1, "BMEx", BMEX), [rej(Reason.PRODUCT_NOT_PERMITTED)]),
        (UnstakeCancel(0, 1, "u1"), [rej(Reason.PRODUCT_NOT_PERMITTED)]),
        (
            UnstakeRequest(0, 1, "BMEx", 2_000 * BMEX, "u2"),
            [Ev(UnstakingUpdated, request_id="u2", status="Pending")],
        ),
        (SetAccountRestriction(0, 1, TradingMode.ALLOWED), []),
        (UnstakeCancel(0, 1, "u1"), [Ev(UnstakingUpdated, request_id="u1", status="Canceled")]),
        (
            Tick(0),
            [
                Check(
                    "staked and unstaking held",
                    lambda r: r.balance(STAKING, "BMEx") == 10_000 * BMEX,
                )
            ],
        ),
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    run(SCENARIOS[name])


def test_a_restored_image_continues_identically() -> None:
    """Snapshot with a stake and a pending request, restore, and both engines emit the same
    events and hashes through the release and the next day's reward."""
    first = Engine(default_catalogue())
    ts = T0
    for command in (
        *FUNDING,
        FundStakingRewards(0, "BMEx", 1_000 * BMEX, "r"),
        Stake(0, 1, "BMEx", 60_000 * BMEX),
        UnstakeRequest(0, 1, "BMEx", 5_000 * BMEX, "u"),
    ):
        ts += 1
        first.apply(command._replace(ts_ns=ts))
    second = Engine(default_catalogue())
    second.restore(first.snapshot())
    assert second.state_hash() == first.state_hash()
    for ts in (MIDNIGHT, MIDNIGHT_2, T0 + UNSTAKING_COOLING_OFF_NS + 1_000):
        assert first.apply(Tick(ts)) == second.apply(Tick(ts))
        assert second.state_hash() == first.state_hash()
    assert first.state.ledger.balance(STAKING, "BMEx") == 55_000 * BMEX


# Convert ------------------------------------------------------------------------------------

BM = "BMEX_USDT"
XS = "XBT_USDT"
USDT = 1_000_000
LATER = T0 + 3_600 * 10**9  # an hour after the lines above: past every quote's expiry
DESK_FUNDS = (
    FundConvertDesk(0, "BMEx", 1_000_000 * BMEX, "desk-bmex"),
    FundConvertDesk(0, "USDt", 1_000_000 * USDT, "desk-usdt"),
)
BOOKS = (
    (sell(4, "a1", 10_000, 500, symbol=BM), [new("a1")]),  # 100 BMEX at $0.500
    (sell(4, "a2", 10_000, 510, symbol=BM), [new("a2")]),  # 100 BMEX at $0.510
    (buy(4, "b1", 10_000, 490, symbol=BM), [new("b1")]),  # 100 BMEX at $0.490
    (buy(4, "x1", 1_000_000, 40_000, symbol=XS), [new("x1")]),  # 1 XBT at $20,000
)


def conv(
    account: int, src: str, dst: str, amount: int, out: int, qid: str, expires: int = LATER
) -> Convert:
    return Convert(0, account, src, dst, amount, out, qid, expires)


def converted(src: str, dst: str, amount: int, out: int) -> Ev:
    return Ev(Converted, from_currency=src, to_currency=dst, from_amount=amount, to_amount=out)


def desk(currency: str, amount: int) -> Check:
    return Check(
        f"desk {currency} == {amount}", lambda r: r.balance(CONVERT_DESK, currency) == amount
    )


SCENARIOS_CONVERT: dict[str, list[Line]] = {
    "a quote within its time converts at exactly the quoted amounts": [
        *[(command, []) for command in DESK_FUNDS],
        *BOOKS,
        (
            conv(1, "USDt", "BMEx", 75 * USDT, 148_860_990, "q1"),  # VWAP over two levels
            [
                converted("USDt", "BMEx", 75 * USDT, 148_860_990),
                moved(1, CONVERT_DESK, 75 * USDT, TransferCode.CONVERT),
                moved(CONVERT_DESK, 1, 148_860_990, TransferCode.CONVERT),
                balance(1, START_BMEX + 148_860_990),
                desk("USDt", 1_000_075 * USDT),
            ],
        ),
        (  # XBT -> USDT -> BMEX: 0.001 XBT = $20 = 40 BMEX, less 0.1%
            conv(1, "XBt", "BMEx", 100_000, 39_960_000, "q2"),
            [converted("XBt", "BMEx", 100_000, 39_960_000)],
        ),
        (conv(1, "XBt", "BMEx", 100_000, 39_960_000, "q2"), [rej(Reason.CONVERT_QUOTE_USED)]),
        (
            conv(1, "BMEx", "USDt", 50 * BMEX, 24_475_500, "q3"),
            [converted("BMEx", "USDt", 50 * BMEX, 24_475_500)],
        ),
    ],
    "expired, stale, thin, paused and unfunded conversions change nothing": [
        *[(command, []) for command in DESK_FUNDS],
        *BOOKS,
        (
            conv(1, "USDt", "BMEx", 50 * USDT, 99_900_000, "late", expires=T0),
            [rej(Reason.CONVERT_QUOTE_EXPIRED)],
        ),
        (
            conv(1, "USDt", "BMEx", 50 * USDT, 99_900_001, "greedy"),
            [rej(Reason.CONVERT_PRICE_MOVED)],
        ),
        (conv(1, "USDt", "BMEx", 200 * USDT, 1, "thin"), [rej(Reason.CONVERT_PRICE_MOVED)]),
        (conv(1, "USDt", "USDt", 1, 1, "same"), [rej(Reason.CONVERT_PAIR_UNKNOWN)]),
        (conv(1, "XBt", "BMEx", 1, 1, "offgrid"), [rej(Reason.CONVERT_PRICE_MOVED)]),
        (conv(1, "XBt", "USDt", 100_000, 1, "nodesk-xbt"), []),  # the desk has USDt: fine
        (
            conv(1, "USDt", "Gwei", 1 * USDT, 1, "nodesk"),
            [rej(Reason.CONVERT_LIQUIDITY_INSUFFICIENT)],
        ),
        (
            conv(9, "USDt", "BMEx", 50 * USDT, 99_900_000, "poor"),
            [rej(Reason.BALANCE_INSUFFICIENT)],
        ),
        (SetAccountRestriction(0, 2, TradingMode.FROZEN), []),
        (
            conv(2, "USDt", "BMEx", 50 * USDT, 99_900_000, "frozen"),
            [rej(Reason.ACCOUNT_FROZEN)],
        ),
        (SetAccountRestriction(0, 2, TradingMode.ALLOWED, ProductClass.SPOT), []),
        (
            conv(2, "USDt", "BMEx", 50 * USDT, 99_900_000, "nospot"),
            [rej(Reason.PRODUCT_NOT_PERMITTED)],
        ),
        (SetInstrumentState(0, BM, "Closed"), []),
        (
            conv(1, "USDt", "BMEx", 50 * USDT, 99_900_000, "paused"),
            [rej(Reason.CONVERT_ASSET_PAUSED)],
        ),
        (Tick(0), [balance(1, START_BMEX), desk("BMEx", 1_000_000 * BMEX)]),
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS_CONVERT))
def test_convert_scenario(name: str) -> None:
    run(SCENARIOS_CONVERT[name])


# TradFi calendars ----------------------------------------------------------------------------

SPY = "SPYUSDT"
SP = 50_000  # $500.00 in SPYUSDT ticks of 0.01
MONDAY_OPEN = utc_ns(2026, 3, 2, 15)
HOLIDAY = days_from_civil(2026, 3, 3)  # Tuesday, made a holiday below
WEDNESDAY_OPEN = utc_ns(2026, 3, 4, 15)


def spy_index(price: int) -> IndexPrice:
    return IndexPrice(0, ".BSPYT", price, 1)


SCENARIOS_TRADFI: dict[str, list[Line]] = {
    "a holiday closes the market and the next session reopens it": [
        (at(MONDAY_OPEN, SetInterestRate(0, SPY, 0)), []),
        (spy_index(500), []),
        (sell(4, "rest", 2_000, SP, symbol=SPY), [new("rest")]),
        (
            buy(2, "b", 1_000, SP, symbol=SPY),
            [new("b"), fill("rest", 1_000, SP, leaves=1_000), fill("b", 1_000, SP, leaves=0)],
        ),
        (
            place(2, "stop", Side.BUY, 1_000, symbol=SPY, ord_type=OrdType.STOP, stop_px=51_000),
            [new("stop")],
        ),
        (
            SetTradingCalendar(0, SPY, (HOLIDAY,)),
            [Ev(TradingCalendarChanged, symbol=SPY, holiday_days=(HOLIDAY,))],
        ),
        (
            at(utc_ns(2026, 3, 3, 15), buy(1, "h", 1_000, SP, symbol=SPY)),
            [rej(Reason.INSTRUMENT_OUTSIDE_TRADING_HOURS), none(OrderEvent)],
        ),
        (
            AmendOrder(0, 4, orig_cl_ord_id="rest", price=SP + 100),
            [rej(Reason.INSTRUMENT_OUTSIDE_TRADING_HOURS)],
        ),
        (at(utc_ns(2026, 3, 3, 16), spy_index(520)), [none(OrderEvent)]),  # the stop waits
        (at(utc_ns(2026, 3, 3, 20), Tick(0)), [Ev(Funding, symbol=SPY)]),  # funding goes on
        (
            at(WEDNESDAY_OPEN, buy(1, "w", 1_000, SP, symbol=SPY)),
            [
                new("w"),
                fill("rest", 1_000, SP, leaves=0),
                fill("w", 1_000, SP, leaves=0),
                triggered("stop"),  # at the reopening; nothing left to buy within the band
                cxl("stop", "Canceled: no liquidity within the price band"),
            ],
        ),
    ],
    "a half-day closes early; a bad calendar is refused": [
        (
            SetTradingCalendar(0, SPY, (), (HOLIDAY,), (18 * 60,)),
            [Ev(TradingCalendarChanged, early_close_days=(HOLIDAY,))],
        ),
        (at(utc_ns(2026, 3, 3, 17, 59), spy_index(500)), []),
        (sell(4, "open", 1_000, SP, symbol=SPY), [new("open")]),
        (
            at(utc_ns(2026, 3, 3, 18), sell(4, "late", 1_000, SP, symbol=SPY)),
            [rej(Reason.INSTRUMENT_OUTSIDE_TRADING_HOURS)],
        ),
        (SetTradingCalendar(0, SPY, (5, 3)), [rej(Reason.CALENDAR_INVALID)]),
        (
            SetTradingCalendar(0, SPY, (HOLIDAY,), (HOLIDAY,), (600,)),
            [rej(Reason.CALENDAR_INVALID)],
        ),
        (SetTradingCalendar(0, "XBTUSD", (HOLIDAY,)), [rej(Reason.CALENDAR_INVALID)]),
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS_TRADFI))
def test_tradfi_scenario(name: str) -> None:
    run(SCENARIOS_TRADFI[name])


def test_a_restored_image_keeps_the_calendar() -> None:
    first = Engine(default_catalogue())
    first.apply(SetTradingCalendar(T0, SPY, (HOLIDAY,), (HOLIDAY + 1,), (18 * 60,)))
    second = Engine(default_catalogue())
    second.restore(first.snapshot())
    assert second.state_hash() == first.state_hash()
    assert second.state.markets[SPY].hours == first.state.markets[SPY].hours
