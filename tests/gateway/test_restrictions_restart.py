"""Restrictions survive a restart of the venue: from the snapshot taken at the stop, and from
the journal alone (snapshots deleted): orders and withdrawals are still refused, and the
gateway's view of the restriction is seeded from the recovered engine."""

import asyncio
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from perpetua.core.commands import AmendOrder, Deposit, IndexPrice, PlaceOrder, WithdrawalRequest
from perpetua.core.enums import RestrictionCause, Side
from perpetua.core.events import Rejected
from perpetua.core.reasons import Reason
from perpetua.gateway.auth import sign
from perpetua.runtime import FeedsConfig, VenueConfig, open_venue
from perpetua.services.compliance import DAY_NS, ComplianceConfig
from perpetua.wire.values import encode_json
from tests.gateway.test_restart import ALICE, BOB, Client, _keys, running
from tests.services.test_compliance import PDF, person

CAROL = 1003  # an account without a key: checked through core commands


def _signed(c: Client, method: str, path: str, body: Any = None, account: int = ALICE) -> Any:
    key, secret = c.keys[account]
    target = "/api/v1" + path
    data = encode_json(body) if body is not None else b""
    expires = str(int(time.time()) + 60)
    headers = {
        "api-key": key,
        "api-expires": expires,
        "api-signature": sign(secret, method, target, expires, data),
        "content-type": "application/json",
    }
    return c.client.request(method, target, content=data, headers=headers)


def _order(c: Client, account: int = ALICE, **fields: Any) -> Any:
    body = {"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 49_000, **fields}
    return _signed(c, "POST", "/order", body, account)


def _reasons(c: Client, command: Any) -> list[tuple[int, int]]:
    result = c.exchange.sequencer.execute(command)
    return [(e.reason, e.cause) for e in result.events if isinstance(e, Rejected)]


SPOT = {"symbol": "XBT_USDT", "orderQty": 1_000}


@pytest.mark.parametrize("from_snapshot", [True, False])
def test_close_only_survives_a_restart(tmp_path: Path, from_snapshot: bool) -> None:
    with running(tmp_path) as c:
        c.execute(Deposit(0, ALICE, "XBt", 10**8, "a-xbt"))
        c.execute(IndexPrice(0, ".BXBT", 50_000, 1))
        assert _order(c).status_code == 200
        answer = c.client.post(
            "/api/v1/admin/restriction",
            json={
                "account": ALICE,
                "trading": "CloseOnly",
                "withdrawals": False,
                "cause": "KycReviewOverdue",
            },
            headers={"x-operator-key": "op"},
        )
        assert answer.status_code == 200, answer.text
        assert _order(c).status_code == 403
        # Bob: derivatives denied (his region), spot open; Carol (no key): frozen
        c.execute(Deposit(0, BOB, "XBt", 10**8, "b-xbt"))
        c.execute(Deposit(0, BOB, "USDt", 10**10, "b-usdt"))
        c.execute(Deposit(0, CAROL, "XBt", 10**8, "c-xbt"))
        c.execute(PlaceOrder(0, CAROL, "XBTUSD", Side.BUY, 100, price=480_000, cl_ord_id="c1"))
        for account, trading, denied, cause in (
            (BOB, "Allowed", "Derivatives", "Jurisdiction"),
            (CAROL, "Frozen", "", "Sanctions"),
        ):
            body = {"account": account, "trading": trading, "productsDenied": denied}
            answer = c.client.post(
                "/api/v1/admin/restriction",
                json={**body, "cause": cause},
                headers={"x-operator-key": "op"},
            )
            assert answer.status_code == 200, answer.text
        assert _order(c, BOB).status_code == 403
        assert _order(c, BOB, **SPOT, price=20_000).status_code == 200
    if not from_snapshot:
        found = [p for p in tmp_path.rglob("snapshots") if p.is_dir()]
        assert found
        for snapshots in found:
            shutil.rmtree(snapshots)
    with running(tmp_path) as c:
        mine = _signed(c, "GET", "/user/restrictions").json()
        assert mine["trading"] == "CloseOnly" and mine["withdrawals"] is False
        refused = _order(c)
        assert refused.status_code == 403
        assert "periodic KYC review overdue" in refused.json()["error"]["message"]
        result = c.exchange.sequencer.execute(WithdrawalRequest(0, ALICE, "XBt", 1_000, 0, "w1"))
        reasons = [e.reason for e in result.events if isinstance(e, Rejected)]
        assert reasons == [Reason.WITHDRAWALS_NOT_PERMITTED]
        denied = _order(c, BOB)
        assert denied.status_code == 403
        assert "not available to this account" in denied.json()["error"]["message"]
        assert _order(c, BOB, **SPOT, side="Sell", price=21_000).status_code == 200
        frozen = (Reason.ACCOUNT_FROZEN, RestrictionCause.SANCTIONS)
        order = PlaceOrder(0, CAROL, "XBTUSD", Side.SELL, 100, price=520_000, cl_ord_id="c2")
        assert _reasons(c, order) == [frozen]
        assert _reasons(c, AmendOrder(0, CAROL, orig_cl_ord_id="c1", order_qty=200)) == [frozen]
        assert _reasons(c, WithdrawalRequest(0, CAROL, "XBt", 1_000, 0, "c-w")) == [frozen]


class _Clock:
    """Wall time plus an offset: compliance's clock (the market's stays on wall time)."""

    def __init__(self) -> None:
        self.offset_ns = 0

    def __call__(self) -> int:
        return time.time_ns() + self.offset_ns


@contextmanager
def _kyc_venue(data_dir: Path, clock: _Clock) -> Iterator[Client]:
    config = VenueConfig(
        data_dir=data_dir,
        operator_key="op",
        rate_limits_enabled=False,
        feeds=FeedsConfig(default="none"),
        compliance=ComplianceConfig(sync_interval_s=0.2),  # the periodic review job, often
    )
    exchange = open_venue(config, compliance_clock=clock)
    keys = _keys(exchange, data_dir)
    exchange.start()
    try:
        with TestClient(exchange.app, client=("127.0.0.1", 50000)) as client:
            yield Client(client, exchange, keys)
    finally:
        exchange.stop()


def _admin(c: Client, path: str, **body: Any) -> Any:
    answer = c.client.post("/api/v1" + path, json=body, headers={"x-operator-key": "op"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _trading(c: Client) -> str:
    return str(_signed(c, "GET", "/user/restrictions").json().get("trading", "Allowed"))


def _until(predicate: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_an_overdue_review_is_close_only_through_a_restart_until_reviewed(tmp_path: Path) -> None:
    """Periodic review in the venue: a year on (compliance's clock), its sync job drops an
    approved account to close-only through the sequencer; a restart keeps it (core state,
    and the sync does not lift it); the reviewer's approval of the periodic case lifts it."""
    clock = _Clock()
    with _kyc_venue(tmp_path, clock) as c:
        c.execute(Deposit(0, ALICE, "XBt", 10**8, "a-xbt"))
        c.execute(IndexPrice(0, ".BXBT", 50_000, 1))
        compliance = c.exchange.compliance
        assert compliance is not None
        asyncio.run(compliance.save_application(ALICE, person()))
        for kind in ("id_front", "id_back", "selfie"):
            asyncio.run(compliance.upload_document(ALICE, kind, PDF + kind.encode(), "", "x.pdf"))
        case = asyncio.run(compliance.submit(ALICE))["caseId"]
        _admin(c, "/admin/kyc/decide", caseId=case, reviewer="rita", decision="approve")
        assert _order(c).status_code == 200
        clock.offset_ns = (compliance.config.review_interval_days + 1) * DAY_NS
        _until(lambda: _trading(c) == "CloseOnly")
        refused = _order(c)
        assert refused.status_code == 403
        assert "periodic KYC review overdue" in refused.json()["error"]["message"]
    with _kyc_venue(tmp_path, clock) as c:
        mine = _signed(c, "GET", "/user/restrictions").json()
        assert (mine["trading"], mine["cause"]) == ("CloseOnly", "KycReviewOverdue")
        assert _order(c).status_code == 403
        queue = c.client.get("/api/v1/admin/kyc/queue", headers={"x-operator-key": "op"}).json()
        [periodic] = [q for q in queue if q["kind"] == "periodic"]
        time.sleep(0.5)  # the sync job runs meanwhile: it does not lift the restriction
        assert _trading(c) == "CloseOnly"
        _admin(c, "/admin/kyc/decide", caseId=periodic["id"], reviewer="rita", decision="approve")
        assert _trading(c) == "Allowed"
        assert _order(c).status_code == 200
