"""Account restrictions over REST: the operator sets them (a core command each), orders and
amends are refused in BitMEX's error shape saying what the account may do and why, the
account can read its restriction, and the operator liquidates a breaching account."""

from typing import Any

import pytest

from perpetua.core.commands import LiquidateAccount, SetAccountRestriction
from perpetua.core.events import Rejected
from tests.gateway.harness import ALICE, BOB, OPERATOR_KEY, Harness, harness

OP = {"x-operator-key": OPERATOR_KEY}


def _post(h: Harness, path: str, body: dict[str, Any], key: str = OPERATOR_KEY) -> Any:
    return h.client.post("/api/v1" + path, json=body, headers={"x-operator-key": key})


def _order(h: Harness, key: Any = None, **fields: Any) -> Any:
    body = {"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 49_000, **fields}
    return h.signed("POST", "/order", key=key, body=body)


def _funded(h: Harness) -> None:
    for account in (ALICE, BOB):
        h.deposit(account, "XBt", 10**8)
    h.index(".BXBT", 50_000)


def test_close_only_refuses_new_exposure_and_says_why() -> None:
    with harness() as h:
        _funded(h)
        resting = _order(h).json()
        answer = _post(
            h,
            "/admin/restriction",
            {"account": ALICE, "trading": "CloseOnly", "cause": "KycReviewOverdue"},
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["trading"] == "CloseOnly" and body["cause"] == "KycReviewOverdue"
        assert len(body["canceledOrders"]) == 1 and resting["ordStatus"] == "New"
        refused = _order(h)
        assert refused.status_code == 403
        message = refused.json()["error"]["message"]
        assert "close-only" in message and "ReduceOnly" in message
        assert "periodic KYC review overdue" in message
        assert set(refused.json()["error"]) == {"message", "name"}
        mine = h.signed("GET", "/user/restrictions").json()
        assert mine["restricted"] and mine["trading"] == "CloseOnly"
        assert "reduce positions" in mine["mayDo"]
        assert h.signed("GET", "/user/restrictions", key=h.bob).json()["restricted"] is False
        [notice] = h.gateway.notifications.private_rows(ALICE)  # privateNotifications (WS)
        assert notice["title"] == "Account restricted" and "close-only" in notice["body"]
        # a ReduceOnly order passes the restriction (BitMEX then cancels it: nothing to reduce)
        reduce_only = _order(h, side="Sell", execInst="ReduceOnly", price=51_000)
        assert reduce_only.status_code == 200, reduce_only.text
        lifted = _post(h, "/admin/restriction", {"account": ALICE, "trading": "Allowed"})
        assert lifted.json()["restricted"] is False
        assert _order(h).status_code == 200


def test_frozen_refuses_amends_and_product_denial_names_the_product() -> None:
    with harness() as h:
        _funded(h)
        assert (
            _post(
                h,
                "/admin/restriction",
                {"account": ALICE, "trading": "Allowed", "productsDenied": "Derivatives",
                 "cause": "Jurisdiction"},
            ).status_code
            == 200
        )  # fmt: skip
        refused = _order(h)
        assert refused.status_code == 403
        assert "not available to this account" in refused.json()["error"]["message"]
        assert "restricted jurisdiction" in refused.json()["error"]["message"]
        _post(h, "/admin/restriction", {"account": ALICE, "trading": "Allowed"})
        order = _order(h).json()
        _post(
            h, "/admin/restriction", {"account": ALICE, "trading": "Frozen", "cause": "Sanctions"}
        )
        amend = h.signed("PUT", "/order", body={"orderID": order["orderID"], "orderQty": 200})
        assert amend.status_code == 403, amend.text  # the freeze cancelled it; still frozen
        assert "frozen" in amend.json()["error"]["message"]
        refused = _order(h, side="Sell", execInst="ReduceOnly", price=51_000)
        assert refused.status_code == 403
        assert "sanctions" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "key", "status"),
    [
        ({"account": ALICE, "trading": "Nope"}, OPERATOR_KEY, 400),
        ({"account": 0, "trading": "Frozen"}, OPERATOR_KEY, 400),
        ({"account": ALICE, "trading": "Frozen", "cause": "Whim"}, OPERATOR_KEY, 400),
        ({"account": ALICE, "trading": "Frozen", "productsDenied": "Bonds"}, OPERATOR_KEY, 400),
        ({"account": ALICE, "trading": "Frozen"}, "wrong-key", 403),
    ],
)
def test_bad_restrictions_change_nothing(body: dict[str, Any], key: str, status: int) -> None:
    with harness() as h:
        seq = h.sequencer.seq
        assert _post(h, "/admin/restriction", body, key=key).status_code == status
        assert h.sequencer.seq == seq
        assert (
            h.client.get("/api/v1/admin/restriction", params={"account": ALICE}, headers=OP).json()[
                "restricted"
            ]
            is False
        )


def test_operator_liquidates_a_breaching_account_in_one_command() -> None:
    with harness() as h:
        _funded(h)
        applied: list[Any] = []
        h.sequencer.subscribe_batches(applied.extend)
        _order(h, price=50_000, orderQty=1_000)
        _order(h, key=h.bob, side="Sell", price=50_000, orderQty=1_000)
        _order(h, key=h.bob, price=49_900, orderQty=1_000)  # Bob's bid takes Alice's close
        _post(
            h, "/admin/restriction", {"account": ALICE, "trading": "Frozen", "cause": "Sanctions"}
        )
        answer = _post(h, "/admin/liquidate", {"account": ALICE, "band": "0.01", "text": "sdn"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["closed"] == {"XBTUSD": -1_000}
        commands = [a.command for a in applied]
        assert [type(c) for c in commands[-2:]] == [SetAccountRestriction, LiquidateAccount]
        assert not any(isinstance(e, Rejected) for e in applied[-1].events)
        again = _post(h, "/admin/liquidate", {"account": ALICE})
        assert again.status_code == 400
        assert _post(h, "/admin/liquidate", {"account": ALICE, "band": "2"}).status_code == 400
