"""Notifications: margin calls as margin nears maintenance, liquidation, auto-deleveraging and
withdrawal status to the trader (``privateNotifications``, ``/globalNotification``); halts,
resumptions and listings to everyone (``publicNotifications``); a service's own notice through
the ``NotificationSink`` hook; ``connected`` counting browser users and API bots."""

import json
import threading
from decimal import Decimal
from typing import Any

from perpetua.core.commands import WithdrawalComplete, WithdrawalRequest
from perpetua.gateway.notices import MARGIN_CALL_LEVEL_PCT
from perpetua.services.notifications import NotificationSink
from tests.gateway.harness import ALICE, BOB, OPERATOR_KEY, harness
from tests.gateway.test_risk_tables import ETH, Inbox, _isolated_long, _subscribe

OP = {"x-operator-key": OPERATOR_KEY}
FIELDS = {"id", "date", "title", "body", "ttl", "type", "closable", "persist", "waitForVisibility"}


def _titles(h: Any, account: int) -> list[str]:
    """The account's notifications, read on the server's loop once it has folded what the
    sequencer handed it."""
    rows = h.client.portal.call(h.gateway.notifications.private_rows, account)
    return [row["title"] for row in rows]


def _check(h: Any) -> None:
    """One margin-call check on the server's loop, after the batches it has been handed."""
    h.client.portal.call(h.gateway.margin_calls.check)


def _index_at(h: Any, price: Decimal) -> None:
    h.index(".BETHT", int(price * 100), 100)


def test_margin_call_once_per_approach_then_liquidation() -> None:
    with harness() as h:
        row = _isolated_long(h)  # 2000 ETHUSDT at 2000, isolated 10x
        per_dollar = 2000 * 10  # USDt minor units of PnL per 1 USDT of price
        maint, margin = row["posMaint"], row["posMargin"]
        level_90 = Decimal(2000) + (Decimal(maint) / Decimal("0.9") - margin) / per_dollar
        assert row["liquidationPrice"] < level_90 < 2000
        with h.client.websocket_connect("/realtime") as ws:
            inbox = _subscribe(ws, "privateNotifications")
            _check(h)
            assert _titles(h, ALICE) == []  # at entry: far from maintenance
            _index_at(h, level_90)
            _check(h)
            call = inbox.table("privateNotifications", "insert")["data"][0]
            assert call["title"] == "Margin call" and call["type"] == "error"
            assert set(call) == FIELDS and "ETHUSDT" in call["body"]
            _check(h)
            assert _titles(h, ALICE) == ["Margin call"]  # once per approach
            _index_at(h, Decimal(2000))  # back: re-armed
            _check(h)
            _index_at(h, level_90)
            _check(h)
            assert _titles(h, ALICE) == ["Margin call", "Margin call"]
            h.index(".BETHT", int(row["liquidationPrice"] * 20) - 1, 20)  # taken over
            liquidated = inbox.take(
                lambda m: (
                    m.get("table") == "privateNotifications"
                    and "liquidated" in m["data"][0]["title"]
                )
            )["data"][0]
            assert liquidated["title"] == f"{ETH} position liquidated"
        listed = h.signed("GET", "/globalNotification").json()
        assert [r["title"] for r in listed][-1] == f"{ETH} position liquidated"
        assert h.signed("GET", "/globalNotification", key=h.bob).json() == []
        assert MARGIN_CALL_LEVEL_PCT == 80


def test_auto_deleveraging_notifies_the_deleveraged() -> None:
    with harness() as h:
        _isolated_long(h)
        h.index(".BETHT", 1000)  # far below bankruptcy, no bids: Bob is deleveraged
        assert f"{ETH} position auto-deleveraged" in _titles(h, BOB)


def test_withdrawal_status_and_the_service_hook() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**8)
        with h.client.websocket_connect("/realtime") as ws:
            inbox = _subscribe(ws, "privateNotifications")
            h.sequencer.execute(WithdrawalRequest(0, ALICE, "XBt", 10**7, 1_000, "w-1"))
            pending = inbox.table("privateNotifications", "insert")["data"][0]
            assert (pending["title"], pending["type"]) == ("Withdrawal pending", "info")
            assert "0.1 XBT" in pending["body"] and "w-1" in pending["body"]
            h.sequencer.execute(WithdrawalComplete(0, "w-1"))
            done = inbox.table("privateNotifications", "insert")["data"][0]
            assert (done["title"], done["type"]) == ("Withdrawal completed", "success")
            sink: NotificationSink = h.gateway.notifications
            thread = threading.Thread(
                target=sink.notify,
                args=(ALICE, "Withdrawal broadcast", "tx 0xabc has 1 confirmation", "info"),
            )
            thread.start()
            thread.join()
            hooked = inbox.table("privateNotifications", "insert")["data"][0]
            assert hooked["title"] == "Withdrawal broadcast" and hooked["id"] > done["id"]
        assert "Withdrawal broadcast" not in _titles(h, BOB)


def test_halts_resumptions_and_listings_go_to_everyone() -> None:
    with harness() as h:
        h.index(".BXBT", 50_000)
        with h.client.websocket_connect("/realtime") as ws:
            ws.receive_text()  # welcome
            ws.send_text(json.dumps({"op": "subscribe", "args": ["publicNotifications"]}))
            assert json.loads(ws.receive_text())["success"] is True
            assert json.loads(ws.receive_text())["data"] == []
            inbox = Inbox(ws)
            for state in ("Closed", "Open"):
                answer = h.client.post(
                    "/api/v1/admin/instrument/state",
                    json={"symbol": "XBTUSD", "state": state},
                    headers=OP,
                )
                assert answer.status_code == 200
            listed = h.client.post(
                "/api/v1/admin/listFuture", json={"root": "XBT", "year": 2027, "quarter": 3},
                headers=OP,
            )  # fmt: skip
            assert listed.status_code == 200, listed.text
            titles = [
                inbox.table("publicNotifications", "insert")["data"][0]["title"] for _ in range(3)
            ]
            assert titles == ["XBTUSD halted", "XBTUSD open", "New listing: XBTU27"]
        partial_rows = [
            r["title"] for r in h.client.portal.call(h.gateway.notifications.public_rows)
        ]
        assert partial_rows == titles
        assert [r["title"] for r in h.signed("GET", "/globalNotification").json()] == titles


def test_connected_counts_browser_users_and_bots() -> None:
    with harness() as h:
        assert h.client.get("/api/v1/chat/connected").json() == {"users": 0, "bots": 0}
        with h.client.websocket_connect("/realtime") as anonymous:
            anonymous.receive_text()
            with h.client.websocket_connect("/realtime") as bot:
                _subscribe(bot, "connected")
                counts = h.client.get("/api/v1/chat/connected").json()
                assert counts == {"users": 1, "bots": 1}
