"""Restrictions survive a restart of the venue: from the snapshot taken at the stop, and from
the journal alone (snapshots deleted): orders and withdrawals are still refused, and the
gateway's view of the restriction is seeded from the recovered engine."""

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from perpetua.core.commands import Deposit, IndexPrice, WithdrawalRequest
from perpetua.core.events import Rejected
from perpetua.core.reasons import Reason
from perpetua.gateway.auth import sign
from perpetua.wire.values import encode_json
from tests.gateway.test_restart import ALICE, Client, running


def _signed(c: Client, method: str, path: str, body: Any = None) -> Any:
    key, secret = c.keys[ALICE]
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


def _order(c: Client) -> Any:
    body = {"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 49_000}
    return _signed(c, "POST", "/order", body)


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
