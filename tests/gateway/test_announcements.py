"""Announcements: the operator publishes and withdraws them through core commands; REST
(``/announcement``, ``/announcement/urgent``) and the WebSocket ``announcement`` table answer
BitMEX's ``Announcement`` rows; bad input is a 400 that changes nothing; the read models keep
them for a restart."""

import asyncio
import json
from typing import Any

from perpetua.store import queries
from tests.gateway.harness import OPERATOR_KEY, harness

OP = {"x-operator-key": OPERATOR_KEY}
FIELDS = {"id", "link", "title", "content", "date"}  # BitMEX's Announcement model


def _publish(h: Any, **body: Any) -> Any:
    return h.client.post("/api/v1/admin/announcement", json=body, headers=OP)


def test_publish_list_urgent_and_withdraw() -> None:
    with harness() as h:
        assert h.client.get("/api/v1/announcement").json() == []
        first = _publish(h, title="Maintenance", content="Saturday 10:00 UTC", link="/status")
        assert first.status_code == 200, first.text
        assert first.json()["id"] == h.sequencer.seq
        banner = _publish(h, title="XBTUSD halted", urgent=True)
        listed = h.client.get("/api/v1/announcement").json()
        assert [r["title"] for r in listed] == ["XBTUSD halted", "Maintenance"]  # newest first
        assert set(listed[1]) == FIELDS
        assert listed[1]["content"] == "Saturday 10:00 UTC" and listed[1]["link"] == "/status"
        assert listed[1]["date"].endswith("Z")
        columns = h.client.get("/api/v1/announcement", params={"columns": '["title"]'}).json()
        assert set(columns[0]) == {"id", "title"}
        urgent = h.signed("GET", "/announcement/urgent")
        assert urgent.status_code == 200 and [r["title"] for r in urgent.json()] == [
            "XBTUSD halted"
        ]
        assert h.client.get("/api/v1/announcement/urgent").status_code == 401  # needs a key
        gone = h.client.request(
            "DELETE", "/api/v1/admin/announcement", json={"id": banner.json()["id"]}, headers=OP
        )
        assert gone.status_code == 200, gone.text
        assert [r["title"] for r in h.client.get("/api/v1/announcement").json()] == ["Maintenance"]
        assert h.signed("GET", "/announcement/urgent").json() == []


def test_bad_input_and_no_operator_key_change_nothing() -> None:
    with harness() as h:
        seq = h.sequencer.seq
        assert _publish(h, title="   ").status_code == 400  # the core's reason
        assert _publish(h, title="x" * 201).status_code == 400
        assert _publish(h, content="no title").status_code == 400
        refused = h.client.post("/api/v1/admin/announcement", json={"title": "Hi"})
        assert refused.status_code == 403
        wrong = h.client.request(
            "DELETE", "/api/v1/admin/announcement", json={"id": 999}, headers=OP
        )
        assert wrong.status_code == 404
        assert h.client.get("/api/v1/announcement").json() == []
        assert h.sequencer.seq == seq + 2  # the two the core refused, journaled as Rejected


def test_websocket_partial_insert_and_delete() -> None:
    with harness() as h:
        _publish(h, title="Welcome")
        with h.client.websocket_connect("/realtime") as ws:
            ws.receive_text()  # welcome
            ws.send_text(json.dumps({"op": "subscribe", "args": ["announcement"]}))
            assert json.loads(ws.receive_text())["subscribe"] == "announcement"
            partial = json.loads(ws.receive_text())
            assert partial["action"] == "partial" and partial["keys"] == ["id"]
            assert [r["title"] for r in partial["data"]] == ["Welcome"]
            added = _publish(h, title="New market: ETHUSDTH27").json()
            insert = json.loads(ws.receive_text())
            assert insert["table"] == "announcement" and insert["action"] == "insert"
            assert insert["data"][0]["id"] == added["id"]
            h.client.request("DELETE", "/api/v1/admin/announcement", json={"id": added["id"]},
                             headers=OP)  # fmt: skip
            delete = json.loads(ws.receive_text())
            assert delete["action"] == "delete" and delete["data"][0]["id"] == added["id"]


def test_read_models_keep_them_for_a_restart() -> None:
    with harness() as h:
        kept = _publish(h, title="Kept", urgent=True).json()["id"]
        dropped = _publish(h, title="Dropped").json()["id"]
        h.client.request("DELETE", "/api/v1/admin/announcement", json={"id": dropped}, headers=OP)
        history = h.gateway.history
        stored = asyncio.run(history.read(h.sequencer.seq, queries.announcements_of_all))
        assert [(r.id, r.title, r.urgent) for r in stored] == [(kept, "Kept", True)]
        fresh = type(h.gateway.market)(h.gateway.market.specs.values())
        fresh.announcements.seed(stored)
        assert fresh.announcements.listing(urgent_only=True)[0]["title"] == "Kept"
