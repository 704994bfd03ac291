"""Scenarios for account restrictions (core.restrictions): close-only, frozen, per-product-class
denials, deposit and withdrawal permissions, the operator's liquidation, and restrictions
surviving a snapshot/restore. See ``test_scenarios.py`` for how lines are checked.
"""

import pytest

from perpetua.core.commands import (
    AmendOrder,
    CancelOrders,
    Deposit,
    LiquidateAccount,
    SetAccountRestriction,
    WalletTransfer,
    WithdrawalRequest,
)
from perpetua.core.engine import Engine
from perpetua.core.enums import ExecInst, ProductClass, RestrictionCause, TradingMode
from perpetua.core.events import AccountRestricted, OrderEvent, Rejected, WithdrawalUpdated
from perpetua.core.reasons import Reason
from perpetua.core.restrictions import (
    TEXT_CANCEL_CLOSE_ONLY,
    TEXT_CANCEL_FROZEN,
    TEXT_CANCEL_LIQUIDATION,
    TEXT_CANCEL_PRODUCT,
)
from tests.core.test_scenarios import (
    SKIP,
    Check,
    Ev,
    Line,
    amended,
    buy,
    cxl,
    index,
    new,
    none,
    rej,
    run,
    sell,
)

P = 200_000  # $20,000.0 in XBTUSD ticks
SP = 40_000  # $20,000.0 in XBT_USDT ticks
XS = "XBT_USDT"
RO = ExecInst.REDUCE_ONLY
CLOSE_ONLY = TradingMode.CLOSE_ONLY
FROZEN = TradingMode.FROZEN
OVERDUE = RestrictionCause.KYC_REVIEW_OVERDUE
SANCTIONS = RestrictionCause.SANCTIONS
JURISDICTION = RestrictionCause.JURISDICTION


def restrict(
    account: int,
    trading: TradingMode,
    cause: RestrictionCause = RestrictionCause.OPERATOR,
    products: int = 0,
    deposits: bool = True,
    withdrawals: bool = True,
) -> SetAccountRestriction:
    return SetAccountRestriction(0, account, trading, products, deposits, withdrawals, cause)


def position(account: int, qty: int, symbol: str = "XBTUSD") -> Check:
    return Check(
        f"position {account} {symbol} == {qty}", lambda r: r.position(account, symbol) == qty
    )


def live_orders(account: int, count: int) -> Check:
    return Check(
        f"account {account} has {count} live orders",
        lambda r: len(r.state.account(account).orders) == count,
    )


def restricted(account: int, **fields: object) -> Ev:
    return Ev(AccountRestricted, account=account, **fields)


# Account 1 long 100 XBTUSD (from account 2), with a resting buy and a resting ReduceOnly sell.
LONG_WITH_ORDERS: list[Line] = [
    (index(20_000), SKIP),
    (buy(1, "open", 1_000, P), SKIP),
    (sell(2, "hit", 1_000, P), [position(1, 1_000)]),
    (buy(1, "rest", 1_000, P - 100), [new("rest")]),
    (sell(1, "ro", 500, P + 100, exec_inst=RO), [new("ro")]),
]

SCENARIOS: dict[str, list[Line]] = {
    "close-only: resting exposure cancelled, only reducing orders, cause named": [
        *LONG_WITH_ORDERS,
        (
            restrict(1, CLOSE_ONLY, OVERDUE),
            [
                restricted(1, trading=CLOSE_ONLY, cause=OVERDUE, withdrawals=True),
                cxl("rest", TEXT_CANCEL_CLOSE_ONLY),  # the ReduceOnly sell stays
            ],
        ),
        (buy(1, "x", 100, P), [rej(Reason.ACCOUNT_CLOSE_ONLY, cl_ord_id="x", cause=OVERDUE)]),
        (sell(1, "y", 100, P + 200), [rej(Reason.ACCOUNT_CLOSE_ONLY, cause=OVERDUE)]),
        (buy(1, "sp", 100, SP, symbol=XS), [rej(Reason.ACCOUNT_CLOSE_ONLY, cause=OVERDUE)]),
        (sell(1, "z", 100, P + 200, exec_inst=RO), [new("z"), none(Rejected)]),
        (AmendOrder(0, 1, orig_cl_ord_id="ro", order_qty=600), [amended("ro", order_qty=600)]),
        (
            WithdrawalRequest(0, 1, "XBt", 1_000, 0, "w1"),
            [Ev(WithdrawalUpdated, status="Pending"), none(Rejected)],
        ),
        (CancelOrders(0, 1, cl_ord_ids=("z",)), [cxl("z")]),
        (
            sell(1, "close", 100, P + 500, exec_inst=ExecInst.CLOSE),
            [new("close"), none(Rejected)],
        ),
        (
            restrict(1, CLOSE_ONLY, OVERDUE, deposits=False, withdrawals=False),
            [restricted(1, deposits=False, withdrawals=False), none(OrderEvent)],
        ),
        (
            WithdrawalRequest(0, 1, "XBt", 1_000, 0, "w2"),
            [rej(Reason.WITHDRAWALS_NOT_PERMITTED, cause=OVERDUE), none(WithdrawalUpdated)],
        ),
        (Deposit(0, 1, "XBt", 1_000, "d1"), [rej(Reason.DEPOSITS_NOT_PERMITTED, cause=OVERDUE)]),
        (restrict(1, TradingMode.ALLOWED), [restricted(1, trading=0, cause=0)]),
        (buy(1, "again", 100, P - 300), [new("again"), none(Rejected)]),
        (Deposit(0, 1, "XBt", 1_000, "d1"), [none(Rejected)]),
    ],
    "frozen: every order cancelled; no orders, amends, deposits, withdrawals or transfers": [
        *LONG_WITH_ORDERS,
        (
            restrict(1, FROZEN, SANCTIONS),
            [
                restricted(1, trading=FROZEN, cause=SANCTIONS),
                cxl("rest", TEXT_CANCEL_FROZEN),
                cxl("ro", TEXT_CANCEL_FROZEN),
            ],
        ),
        (sell(1, "x", 100, P, exec_inst=RO), [rej(Reason.ACCOUNT_FROZEN, cause=SANCTIONS)]),
        (buy(1, "sp", 100, SP, symbol=XS), [rej(Reason.ACCOUNT_FROZEN, cause=SANCTIONS)]),
        (
            AmendOrder(0, 1, orig_cl_ord_id="rest", order_qty=500),
            [rej(Reason.ACCOUNT_FROZEN, cause=SANCTIONS)],
        ),
        (
            WithdrawalRequest(0, 1, "XBt", 1_000, 0, "w1"),
            [rej(Reason.ACCOUNT_FROZEN, cause=SANCTIONS), none(WithdrawalUpdated)],
        ),
        (Deposit(0, 1, "XBt", 1_000, "d1"), [rej(Reason.ACCOUNT_FROZEN, cause=SANCTIONS)]),
        (
            WalletTransfer(0, 1, 2, "XBt", 1_000, "t1"),
            [rej(Reason.ACCOUNT_FROZEN, account=1, command="WalletTransfer")],
        ),
        (
            WalletTransfer(0, 2, 1, "XBt", 1_000, "t2"),
            [rej(Reason.ACCOUNT_FROZEN, account=1, command="WalletTransfer")],
        ),
        (buy(2, "other", 100, P - 100), [new("other"), none(Rejected)]),  # others unaffected
    ],
    "a denied class leaves the other classes' orders and amends alone": [
        (buy(1, "rest", 1_000, P - 100), SKIP),
        (restrict(1, TradingMode.ALLOWED, JURISDICTION, products=ProductClass.SPOT), SKIP),
        (buy(1, "sp", 100, SP, symbol=XS), [rej(Reason.PRODUCT_NOT_PERMITTED)]),
        (AmendOrder(0, 1, orig_cl_ord_id="rest", order_qty=2_000), [amended("rest")]),
    ],
    "per-product class: derivatives and TradFi denied, spot open, and the other way round": [
        (
            restrict(
                1,
                TradingMode.ALLOWED,
                JURISDICTION,
                products=ProductClass.DERIVATIVES | ProductClass.TRADFI,
            ),
            [restricted(1, trading=0, products_denied=6, cause=JURISDICTION)],
        ),
        (buy(1, "d", 100, P), [rej(Reason.PRODUCT_NOT_PERMITTED, cause=JURISDICTION)]),
        (
            buy(1, "t", 100, 20_000, symbol="XAUUSDT"),
            [rej(Reason.PRODUCT_NOT_PERMITTED, cause=JURISDICTION)],
        ),
        (buy(1, "s", 100, SP, symbol=XS), [new("s"), none(Rejected)]),
        (
            restrict(1, TradingMode.ALLOWED, JURISDICTION, products=ProductClass.TRADFI),
            [restricted(1, products_denied=4), none(OrderEvent)],  # the spot order stays
        ),
        (buy(1, "d2", 100, P), [new("d2"), none(Rejected)]),
        (
            restrict(1, TradingMode.ALLOWED, JURISDICTION, products=ProductClass.DERIVATIVES),
            [cxl("d2", TEXT_CANCEL_PRODUCT)],
        ),
        (buy(1, "t2", 100, 20_000, symbol="XAUUSDT"), [new("t2"), none(Rejected)]),
    ],
    "a denied product class still lets a position be reduced": [
        *LONG_WITH_ORDERS,
        (
            restrict(1, TradingMode.ALLOWED, JURISDICTION, products=ProductClass.DERIVATIVES),
            [cxl("rest", TEXT_CANCEL_PRODUCT)],
        ),
        (buy(1, "more", 100, P), [rej(Reason.PRODUCT_NOT_PERMITTED)]),
        (sell(1, "less", 100, P + 300, exec_inst=RO), [new("less"), none(Rejected)]),
    ],
    "invalid restrictions change nothing": [
        (
            SetAccountRestriction(0, 1, 5),
            [rej(Reason.RESTRICTION_INVALID), none(AccountRestricted)],
        ),
        (SetAccountRestriction(0, 1, 1, 8), [rej(Reason.RESTRICTION_INVALID)]),
        (SetAccountRestriction(0, 0, 1), [rej(Reason.RESTRICTION_INVALID)]),
        (SetAccountRestriction(0, 1, 1, cause=99), [rej(Reason.RESTRICTION_INVALID)]),
        (buy(1, "ok", 100, P), [new("ok"), none(Rejected)]),
    ],
    "operator liquidation: position closed within the band only, recorded": [
        *LONG_WITH_ORDERS,
        (buy(3, "near", 600, P - 100), SKIP),
        (buy(3, "far", 1_000, P - 5_000), SKIP),  # 2.5% below the mark: outside a 1% band
        (restrict(1, FROZEN, SANCTIONS), SKIP),
        (LiquidateAccount(0, 1, 10_000), [position(1, 400), position(3, 600), live_orders(1, 0)]),
        (LiquidateAccount(0, 9, 10_000), [rej(Reason.NOTHING_TO_LIQUIDATE)]),
        (LiquidateAccount(0, 1, 0), [rej(Reason.RESTRICTION_INVALID)]),
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    run(SCENARIOS[name])


def test_restrictions_survive_snapshot_and_restore() -> None:
    r = run(
        [
            *LONG_WITH_ORDERS,
            (restrict(1, CLOSE_ONLY, OVERDUE, withdrawals=False), SKIP),
            (restrict(2, FROZEN, SANCTIONS), SKIP),
        ]
    )
    image, digest = r.engine.snapshot_and_hash()
    restored = Engine(r.engine.instruments)
    restored.restore(image)
    assert restored.state_hash() == digest
    for engine in (r.engine, restored):
        ts = r.ts_ns + 1_000_000
        place = buy(1, "x", 100, P)._replace(ts_ns=ts)
        withdraw = WithdrawalRequest(ts, 2, "XBt", 1_000, 0, "w1")
        rejected = [e for e in engine.apply(place) + engine.apply(withdraw) if type(e) is Rejected]
        assert [(e.reason, e.cause) for e in rejected] == [
            (Reason.ACCOUNT_CLOSE_ONLY, OVERDUE),
            (Reason.ACCOUNT_FROZEN, SANCTIONS),
        ]


def test_no_restriction_keeps_the_image_unchanged() -> None:
    r = run([(restrict(1, FROZEN), SKIP), (restrict(1, TradingMode.ALLOWED), SKIP)])
    assert "restrictions" not in r.engine.snapshot()


def test_liquidation_cancels_orders_then_closes_at_protected_prices() -> None:
    r = run([*LONG_WITH_ORDERS, (buy(3, "near", 1_000, P - 100), SKIP)])
    events = r.apply(LiquidateAccount(0, 1, 10_000, "breach of residence rule"))
    rows = [e for e in events if type(e) is OrderEvent and e.account == 1]
    assert [(e.cl_ord_id, e.text) for e in rows[:2]] == [
        ("rest", TEXT_CANCEL_LIQUIDATION),
        ("ro", TEXT_CANCEL_LIQUIDATION),
    ]
    closing = [e for e in rows[2:] if e.cl_ord_id == ""]
    assert closing[0].price == P - 2_000  # mark - 1%: the worst price it may trade at
    assert closing[0].exec_inst == ExecInst.CLOSE
    assert closing[0].text == "breach of residence rule"
    assert r.position(1) == 0
    assert not any(type(e) is Rejected for e in events)
