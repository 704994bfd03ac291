"""Scenarios for money: spot holds and balance checks, self-trade prevention, trading fees (ADV
tiers, maker rebates, staking discount), deposits and withdrawals, and TradFi trading hours.
See ``test_scenarios.py`` for how lines are checked.
"""

import pytest

from perpetua.core.calendar import utc_ns
from perpetua.core.commands import (
    AmendOrder,
    CancelOrders,
    Deposit,
    DepositReverse,
    SetFeeDiscount,
    SetFeeTier,
    WalletTransfer,
    WithdrawalCancel,
    WithdrawalComplete,
    WithdrawalRequest,
)
from perpetua.core.enums import ExecInst, Liquidity, OrdType
from perpetua.core.events import (
    DepositCredited,
    FeeSettingsChanged,
    OrderEvent,
    Rejected,
    Transfer,
    WithdrawalUpdated,
)
from perpetua.core.ledger import EXTERNAL, FEES, INSURANCE, WITHDRAWAL_TRANSIT, TransferCode
from perpetua.core.reasons import Reason
from tests.core.test_scenarios import (
    BUY,
    SELL,
    SKIP,
    Check,
    Ev,
    Line,
    at,
    book,
    buy,
    cxl,
    fill,
    new,
    none,
    place,
    prt,
    rej,
    run,
    sell,
)

P = 200_000  # $20,000.0 in XBTUSD ticks
SP = 40_000  # $20,000.0 in XBT_USDT ticks of 0.5
XS = "XBT_USDT"
QUOTE_100 = 2_000_000  # USDt for 100 XBT_USDT units (0.0001 XBT) at $20,000
BASE_100 = 10_000  # XBt in 100 XBT_USDT units
SPOT_FEE_PPM = 1_000
START_USDT = 1_000_000 * 1_000_000
START_XBT = 10 * 100_000_000


def held(account: int, currency: str, amount: int) -> Check:
    return Check(
        f"held {account} {currency} == {amount}", lambda r: r.held(account, currency) == amount
    )


def balance(account: int, currency: str, amount: int) -> Check:
    return Check(
        f"balance {account} {currency} == {amount}",
        lambda r: r.balance(account, currency) == amount,
    )


def transfer(debit: int, credit: int, amount: int, code: TransferCode, currency: str = "XBt") -> Ev:
    return Ev(
        Transfer,
        debit_account=debit,
        credit_account=credit,
        amount=amount,
        code=code,
        currency=currency,
    )


SCENARIOS: dict[str, list[Line]] = {
    "spot holds are reserved by open orders and released": [
        (
            buy(1, "b", 100, SP, symbol=XS),
            [new("b"), book(1, SP, 100, XS), held(1, "USDt", QUOTE_100 + 2_000)],
        ),
        (sell(2, "s", 300, SP + 20, symbol=XS), [held(2, "XBt", 3 * BASE_100)]),
        (
            AmendOrder(0, 1, orig_cl_ord_id="b", order_qty=200),
            [held(1, "USDt", 2 * (QUOTE_100 + 2_000))],
        ),
        (AmendOrder(0, 1, orig_cl_ord_id="b", order_qty=100), [held(1, "USDt", QUOTE_100 + 2_000)]),
        (
            CancelOrders(0, 1, cl_ord_ids=("b",)),
            [cxl("b"), held(1, "USDt", 0), balance(1, "USDt", START_USDT)],
        ),
        (
            buy(3, "t", 100, SP + 100, symbol=XS),
            [  # hold at its limit, filled at the maker's
                new("t"),
                fill("s", 100, SP + 20, leaves=200),
                fill("t", 100, SP + 20, leaves=0),
                held(3, "USDt", 0),
                held(2, "XBt", 2 * BASE_100),
                balance(3, "XBt", START_XBT + BASE_100),
                balance(
                    3, "USDt", START_USDT - 2_001_000 - 2_001
                ),  # quote + taker fee (rounded up)
                balance(2, "USDt", START_USDT + 2_001_000 - 2_001),
                balance(2, "XBt", START_XBT - BASE_100),
            ],
        ),
        (CancelOrders(0, 2, cl_ord_ids=("s",)), [held(2, "XBt", 0)]),
    ],
    "spot sells of ETH hold Gwei": [
        (sell(1, "s", 10, 200_000, symbol="ETH_USDT"), [new("s"), held(1, "Gwei", 1_000_000)]),
        (
            buy(2, "b", 20, 200_000, symbol="ETH_USDT"),
            [
                new("b"),
                fill("s", 10, 200_000, leaves=0),
                fill("b", 10, 200_000, leaves=10),
                held(1, "Gwei", 0),
                held(2, "USDt", 2_000_000 + 2_000),
            ],
        ),
    ],
    "spot balance insufficient is rejected with the amount and currency required": [
        (Deposit(0, 9, "USDt", QUOTE_100 + 2_000, "poor"), SKIP),
        (
            buy(9, "x", 200, SP, symbol=XS),
            [
                rej(
                    Reason.BALANCE_INSUFFICIENT,
                    cl_ord_id="x",
                    required=2 * (QUOTE_100 + 2_000),
                    currency="USDt",
                ),
                none(OrderEvent),
            ],
        ),
        (
            sell(9, "y", 100, SP, symbol=XS),
            [rej(Reason.BALANCE_INSUFFICIENT, required=BASE_100, currency="XBt")],
        ),
        (buy(9, "z", 100, SP, symbol=XS), [new("z"), held(9, "USDt", QUOTE_100 + 2_000)]),
        (
            buy(9, "w", 100, SP - 2, symbol=XS),
            [  # the first order's hold is spoken for
                rej(Reason.BALANCE_INSUFFICIENT, currency="USDt")
            ],
        ),
        (
            AmendOrder(0, 9, orig_cl_ord_id="z", order_qty=200),
            [
                rej(Reason.BALANCE_INSUFFICIENT, required=2 * (QUOTE_100 + 2_000), currency="USDt"),
                none(OrderEvent),
            ],
        ),
    ],
    "ReduceOnly, Close and IndexPrice are rejected on spot": [
        (
            sell(1, "ro", 100, SP, symbol=XS, exec_inst=ExecInst.REDUCE_ONLY),
            [rej(Reason.REDUCE_ONLY_NOT_FOR_SPOT, cl_ord_id="ro")],
        ),
        (
            sell(1, "c", 100, SP, symbol=XS, exec_inst=ExecInst.CLOSE),
            [rej(Reason.REDUCE_ONLY_NOT_FOR_SPOT)],
        ),
        (
            sell(
                1,
                "ip",
                100,
                symbol=XS,
                ord_type=OrdType.STOP,
                stop_px=SP - 100,
                exec_inst=ExecInst.INDEX_PRICE,
            ),
            [rej(Reason.INDEX_PRICE_NOT_FOR_SPOT)],
        ),
        (
            sell(
                1,
                "lp",
                100,
                symbol=XS,
                ord_type=OrdType.STOP,
                stop_px=SP - 100,
                exec_inst=ExecInst.LAST_PRICE,
            ),
            [new("lp"), held(1, "XBt", 0)],
        ),
    ],
    "self-trade prevention cancels the taker and leaves the resting order": [
        (sell(1, "own", 100, P), SKIP),
        (sell(3, "other", 100, P - 10), SKIP),
        (
            buy(1, "t", 300, P),
            [
                new("t"),
                fill("other", 100, P - 10, leaves=0),
                fill("t", 100, P - 10, leaves=200),
                cxl("t", "Canceled: Self trade prevention", cum=100),
                prt(100, P - 10, maker_account=3),
                Check("own order untouched", lambda r: r.order("own").leaves_qty == 100),
            ],
        ),
        (
            buy(1, "t2", 100, P, time_in_force=None),
            [new("t2"), cxl("t2", "Canceled: Self trade prevention", cum=0), none(Rejected)],
        ),
        (
            buy(2, "b", 100, P),
            [new("b"), fill("own", 100, P, leaves=0), fill("b", 100, P, leaves=0)],
        ),
    ],
    "fees: maker and taker amounts at tier 0, a maker rebate from tier 6": [
        (sell(1, "s", 100, P), SKIP),
        (
            buy(2, "b", 100, P),
            [  # value 500,000 XBt: taker 0.075%, maker 0.02%
                new("b"),
                fill(
                    "s",
                    100,
                    P,
                    leaves=0,
                    exec_comm=100,
                    fee_rate_ppm=200,
                    liquidity=Liquidity.MAKER,
                    exec_cost=500_000,
                ),
                fill(
                    "b",
                    100,
                    P,
                    leaves=0,
                    exec_comm=375,
                    fee_rate_ppm=750,
                    liquidity=Liquidity.TAKER,
                    exec_cost=-500_000,
                ),
                transfer(2, FEES, 375, TransferCode.TRADE_FEE),
                transfer(1, FEES, 100, TransferCode.TRADE_FEE),
                Check("fees collected", lambda r: r.balance(FEES, "XBt") == 475),
            ],
        ),
        (SetFeeTier(0, 1, 6), [Ev(FeeSettingsChanged, account=1, tier=6, discount_ppm=0)]),
        (sell(1, "s2", 100, P + 10), SKIP),
        (
            buy(2, "b2", 100, P + 10),
            [  # value 499,975: fee rounds up, rebate rounds down
                new("b2"),
                fill("s2", 100, P + 10, leaves=0, exec_comm=-14, fee_rate_ppm=-30),
                fill("b2", 100, P + 10, leaves=0, exec_comm=375, fee_rate_ppm=750),
                transfer(2, FEES, 375, TransferCode.TRADE_FEE),
                transfer(FEES, 1, 14, TransferCode.TRADE_REBATE),
                Check("fees net", lambda r: r.balance(FEES, "XBt") == 475 + 375 - 14),
            ],
        ),
        (buy(1, "b3", 100, P + 10), SKIP),
        (
            sell(3, "s3", 100, P + 10),
            [  # a rebate on a buy too
                new("s3"),
                fill("b3", 100, P + 10, leaves=0, exec_comm=-14, fee_rate_ppm=-30),
                fill("s3", 100, P + 10, leaves=0, exec_comm=375),
            ],
        ),
        (sell(3, "s4", 100, P + 10), SKIP),
        (
            buy(1, "b4", 100, P + 10),
            [  # tier 6 as taker: 0.024%
                new("b4"),
                fill("s4", 100, P + 10, leaves=0, exec_comm=100, fee_rate_ppm=200),
                fill("b4", 100, P + 10, leaves=0, exec_comm=120, fee_rate_ppm=240),
            ],
        ),
        (SetFeeTier(0, 1, 10), [rej(Reason.FEE_TIER_UNKNOWN), none(FeeSettingsChanged)]),
    ],
    "fees: a staking discount lowers positive fees only, down to the taker floor": [
        (
            SetFeeDiscount(0, 2, 500_000),
            [Ev(FeeSettingsChanged, account=2, tier=0, discount_ppm=500_000)],
        ),
        (sell(1, "s", 100, P), SKIP),
        (
            buy(2, "b", 100, P),
            [
                new("b"),
                fill("s", 100, P, leaves=0, exec_comm=100),
                fill("b", 100, P, leaves=0, fee_rate_ppm=375, exec_comm=188),
            ],
        ),  # 187.5 rounded up
        (buy(2, "b2", 100, P), SKIP),
        (
            sell(1, "s2", 100, P),
            [
                new("s2"),
                fill("b2", 100, P, leaves=0, fee_rate_ppm=100, exec_comm=50),
                fill("s2", 100, P, leaves=0, exec_comm=375),
            ],
        ),
        (SetFeeTier(0, 2, 9), [Ev(FeeSettingsChanged, account=2, tier=9, discount_ppm=500_000)]),
        (sell(1, "s3", 100, P), SKIP),
        (
            buy(2, "b3", 100, P),
            [
                new("b3"),
                fill("s3", 100, P, leaves=0),
                fill("b3", 100, P, leaves=0, fee_rate_ppm=175, exec_comm=88),
            ],
        ),  # floor 0.0175%
        (SetFeeDiscount(0, 2, 1_000_001), [rej(Reason.DISCOUNT_INVALID)]),
    ],
    "fees: spot pays its flat rate whatever the tier": [
        (SetFeeTier(0, 1, 9), SKIP),
        (sell(1, "s", 100, SP, symbol=XS), SKIP),
        (
            buy(2, "b", 100, SP, symbol=XS),
            [
                new("b"),
                fill("s", 100, SP, leaves=0, fee_rate_ppm=SPOT_FEE_PPM, exec_comm=2_000),
                fill("b", 100, SP, leaves=0, fee_rate_ppm=SPOT_FEE_PPM, exec_comm=2_000),
                transfer(2, 1, QUOTE_100, TransferCode.SPOT_QUOTE, "USDt"),
                transfer(1, 2, BASE_100, TransferCode.SPOT_BASE, "XBt"),
                transfer(2, FEES, 2_000, TransferCode.TRADE_FEE, "USDt"),
                transfer(1, FEES, 2_000, TransferCode.TRADE_FEE, "USDt"),
            ],
        ),
    ],
    "deposits: credited once per id, refused when malformed": [
        (
            Deposit(0, 5, "XBt", 1_000, "d1"),
            [
                Ev(DepositCredited, transfer_id="d1", account=5, currency="XBt", amount=1_000),
                Ev(
                    Transfer,
                    debit_account=EXTERNAL,
                    credit_account=5,
                    amount=1_000,
                    code=TransferCode.DEPOSIT,
                ),
                balance(5, "XBt", 1_000),
            ],
        ),
        (
            Deposit(0, 5, "XBt", 1_000, "d1"),
            [rej(Reason.TRANSFER_ID_DUPLICATE), none(Transfer), balance(5, "XBt", 1_000)],
        ),
        (Deposit(0, 6, "USDt", 1_000, "d1"), [rej(Reason.TRANSFER_ID_DUPLICATE)]),
        (Deposit(0, 5, "XBt", 0, "d2"), [rej(Reason.AMOUNT_MUST_BE_POSITIVE)]),
        (Deposit(0, 5, "DOGE", 10, "d3"), [rej(Reason.CURRENCY_UNKNOWN)]),
        (Deposit(0, 0, "XBt", 10, "d4"), [rej(Reason.ACCOUNT_UNKNOWN)]),
        (Deposit(0, 5, "BMEx", 7, "d5"), [Ev(DepositCredited, currency="BMEx", amount=7)]),
    ],
    "deposit reversal (a reorg): back to EXTERNAL once; what was spent comes from insurance": [
        (Deposit(0, 5, "XBt", 1_000, "d1"), SKIP),
        (Deposit(0, 6, "XBt", 1_000, "d2"), SKIP),
        (DepositReverse(0, "d1", 6, "XBt", 1_000), [rej(Reason.DEPOSIT_NOT_FOUND), none(Transfer)]),
        (DepositReverse(0, "nope", 5, "XBt", 1_000), [rej(Reason.DEPOSIT_NOT_FOUND)]),
        (DepositReverse(0, "d1", 5, "XBt", 0), [rej(Reason.AMOUNT_MUST_BE_POSITIVE)]),
        (DepositReverse(0, "d1", 5, "DOGE", 1), [rej(Reason.CURRENCY_UNKNOWN)]),
        (
            DepositReverse(0, "d1", 5, "XBt", 1_000),
            [
                transfer(5, EXTERNAL, 1_000, TransferCode.DEPOSIT_REVERSAL),
                none(Rejected),
                balance(5, "XBt", 0),
            ],
        ),
        (DepositReverse(0, "d1", 5, "XBt", 1_000), [rej(Reason.TRANSFER_ID_DUPLICATE)]),
        (WithdrawalRequest(0, 6, "XBt", 700, 100, "w6"), SKIP),
        (
            DepositReverse(0, "d2", 6, "XBt", 1_000),
            [
                transfer(6, EXTERNAL, 200, TransferCode.DEPOSIT_REVERSAL),
                transfer(INSURANCE, EXTERNAL, 800, TransferCode.DEPOSIT_REVERSAL),
                balance(6, "XBt", 0),
            ],
        ),
    ],
    "withdrawals: request holds in transit, cancel releases, complete leaves": [
        (Deposit(0, 5, "XBt", 1_000, "d1"), SKIP),
        (
            WithdrawalRequest(0, 5, "XBt", 600, 100, "w1"),
            [
                Ev(
                    Transfer,
                    debit_account=5,
                    credit_account=WITHDRAWAL_TRANSIT,
                    amount=700,
                    code=TransferCode.WITHDRAWAL_HOLD,
                ),
                Ev(WithdrawalUpdated, withdrawal_id="w1", status="Pending", amount=600, fee=100),
                balance(5, "XBt", 300),
                balance(WITHDRAWAL_TRANSIT, "XBt", 700),
            ],
        ),
        (
            WithdrawalRequest(0, 5, "XBt", 300, 1, "w2"),
            [rej(Reason.BALANCE_INSUFFICIENT, required=301, currency="XBt"), none(Transfer)],
        ),
        (WithdrawalRequest(0, 5, "XBt", 100, 0, "w1"), [rej(Reason.TRANSFER_ID_DUPLICATE)]),
        (WithdrawalRequest(0, 5, "XBt", 0, 0, "w9"), [rej(Reason.AMOUNT_MUST_BE_POSITIVE)]),
        (
            WithdrawalCancel(0, "w1"),
            [
                Ev(
                    Transfer,
                    debit_account=WITHDRAWAL_TRANSIT,
                    credit_account=5,
                    amount=700,
                    code=TransferCode.WITHDRAWAL_RELEASE,
                ),
                Ev(WithdrawalUpdated, withdrawal_id="w1", status="Canceled"),
                balance(5, "XBt", 1_000),
                balance(WITHDRAWAL_TRANSIT, "XBt", 0),
            ],
        ),
        (WithdrawalCancel(0, "w1"), [rej(Reason.WITHDRAWAL_STATE_INVALID), none(Transfer)]),
        (WithdrawalComplete(0, "w1"), [rej(Reason.WITHDRAWAL_STATE_INVALID)]),
        (WithdrawalRequest(0, 5, "XBt", 600, 100, "w3"), SKIP),
        (
            WithdrawalComplete(0, "w3"),
            [
                Ev(
                    Transfer,
                    debit_account=WITHDRAWAL_TRANSIT,
                    credit_account=EXTERNAL,
                    amount=600,
                    code=TransferCode.WITHDRAWAL_COMPLETE,
                ),
                Ev(
                    Transfer,
                    debit_account=WITHDRAWAL_TRANSIT,
                    credit_account=FEES,
                    amount=100,
                    code=TransferCode.WITHDRAWAL_FEE,
                ),
                Ev(WithdrawalUpdated, withdrawal_id="w3", status="Completed"),
                balance(5, "XBt", 300),
                balance(WITHDRAWAL_TRANSIT, "XBt", 0),
                Check(
                    "600 left the exchange",
                    lambda r: r.state.ledger.total("XBt") == 4 * START_XBT + 1_000 - 600,
                ),
            ],
        ),
        (WithdrawalCancel(0, "w3"), [rej(Reason.WITHDRAWAL_STATE_INVALID)]),
        (WithdrawalComplete(0, "nope"), [rej(Reason.WITHDRAWAL_NOT_FOUND)]),
    ],
    "withdrawals cannot take margin held by open orders": [
        (Deposit(0, 6, "XBt", 10_000, "d6"), SKIP),
        (buy(6, "b", 100, P), [new("b")]),  # needs ceil(500,000 x 1.075%) = 5,375 XBt
        (
            WithdrawalRequest(0, 6, "XBt", 5_000, 0, "w1"),
            [rej(Reason.BALANCE_INSUFFICIENT, required=5_000)],
        ),
        (WithdrawalRequest(0, 6, "XBt", 4_625, 0, "w2"), [Ev(WithdrawalUpdated, status="Pending")]),
        (buy(6, "b2", 100, P), [rej(Reason.BALANCE_INSUFFICIENT, currency="XBt")]),
    ],
    "wallet transfers between one owner's accounts: atomic, conserved, margin-checked": [
        (Deposit(0, 7, "XBt", 10_000, "d7"), SKIP),
        (buy(7, "b", 100, P), [new("b")]),  # holds 5,375 XBt of margin
        (
            WalletTransfer(0, 7, 8, "XBt", 4_626, "t1"),
            [rej(Reason.BALANCE_INSUFFICIENT, required=4_626), none(Transfer)],
        ),
        (
            WalletTransfer(0, 7, 8, "XBt", 4_625, "t1"),
            [
                Ev(
                    Transfer,
                    debit_account=7,
                    credit_account=8,
                    amount=4_625,
                    code=TransferCode.WALLET_TRANSFER,
                ),
                balance(7, "XBt", 5_375),
                balance(8, "XBt", 4_625),
                Check(
                    "nothing created or lost",
                    lambda r: r.state.ledger.total("XBt") == 4 * START_XBT + 10_000,
                ),
            ],
        ),
        (WalletTransfer(0, 7, 8, "XBt", 1, "t1"), [rej(Reason.TRANSFER_ID_DUPLICATE)]),
        (WalletTransfer(0, 8, 8, "XBt", 1, "t2"), [rej(Reason.ACCOUNT_UNKNOWN)]),
        (WalletTransfer(0, 8, 7, "XBt", 0, "t3"), [rej(Reason.AMOUNT_MUST_BE_POSITIVE)]),
        (WalletTransfer(0, 8, 7, "DOGE", 1, "t4"), [rej(Reason.CURRENCY_UNKNOWN)]),
        (
            WalletTransfer(0, 8, 7, "XBt", 4_625, "t5"),
            [
                Ev(Transfer, debit_account=8, credit_account=7, amount=4_625),
                balance(7, "XBt", 10_000),
                balance(8, "XBt", 0),
            ],
        ),
    ],
}

MON, SAT = 2, 7  # Monday 2 and Saturday 7 March 2026
SPY = 50_000  # $500.00 in SPYUSDT ticks of 0.01


TRADFI: dict[str, list[Line]] = {
    "SPYUSDT trades only 14:30-21:00 UTC on weekdays": [
        (
            at(utc_ns(2026, 3, MON, 14, 29), place(1, "pre", SELL, 1_000, SPY, symbol="SPYUSDT")),
            [rej(Reason.INSTRUMENT_OUTSIDE_TRADING_HOURS, cl_ord_id="pre"), none(OrderEvent)],
        ),
        (
            at(utc_ns(2026, 3, MON, 14, 30), place(1, "open", SELL, 1_000, SPY, symbol="SPYUSDT")),
            [new("open")],
        ),
        (
            at(utc_ns(2026, 3, MON, 20, 59), place(2, "late", BUY, 1_000, SPY, symbol="SPYUSDT")),
            [new("late"), fill("open", 1_000, SPY, leaves=0), fill("late", 1_000, SPY, leaves=0)],
        ),
        (
            at(utc_ns(2026, 3, MON, 21), place(1, "closed", SELL, 1_000, SPY, symbol="SPYUSDT")),
            [rej(Reason.INSTRUMENT_OUTSIDE_TRADING_HOURS)],
        ),
        (
            at(utc_ns(2026, 3, SAT, 15), place(1, "sat", SELL, 1_000, SPY, symbol="SPYUSDT")),
            [rej(Reason.INSTRUMENT_OUTSIDE_TRADING_HOURS)],
        ),
        (at(utc_ns(2026, 3, SAT, 15), buy(1, "crypto", 100, P)), [new("crypto")]),
    ],
    "XAUUSDT has a daily break 22:00-23:00 UTC": [
        (
            at(utc_ns(2026, 3, 3, 22, 30), buy(1, "brk", 100, 20_000, symbol="XAUUSDT")),
            [rej(Reason.INSTRUMENT_OUTSIDE_TRADING_HOURS)],
        ),
        (at(utc_ns(2026, 3, 3, 23, 0), buy(1, "ok", 100, 20_000, symbol="XAUUSDT")), [new("ok")]),
    ],
    "EURUSDT opens Sunday 22:00 UTC": [
        (
            at(utc_ns(2026, 3, SAT, 12), buy(1, "sat", 1_000, 108_000, symbol="EURUSDT")),
            [rej(Reason.INSTRUMENT_OUTSIDE_TRADING_HOURS)],
        ),
        (
            at(utc_ns(2026, 3, 8, 21, 59), buy(1, "sun-early", 1_000, 108_000, symbol="EURUSDT")),
            [rej(Reason.INSTRUMENT_OUTSIDE_TRADING_HOURS)],
        ),
        (at(utc_ns(2026, 3, 8, 22), buy(1, "sun", 1_000, 108_000, symbol="EURUSDT")), [new("sun")]),
    ],
}
SCENARIOS.update(TRADFI)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    run(SCENARIOS[name])
