"""The operator's routes: each is a core command through the sequencer, refused without the
operator key, with bad input a 400 that changes nothing, and visible to clients at once."""

from typing import Any

import pytest

from perpetua.core.commands import SetFeeTier, SetInterestRate
from perpetua.core.events import Rejected
from tests.gateway.harness import ALICE, OPERATOR_KEY, Harness, harness

OP = {"x-operator-key": OPERATOR_KEY}


def _post(h: Harness, path: str, body: dict[str, Any], key: str = OPERATOR_KEY) -> Any:
    return h.client.post("/api/v1" + path, json=body, headers={"x-operator-key": key})


def _state(h: Harness, symbol: str) -> str:
    return str(h.client.get("/api/v1/instrument", params={"symbol": symbol}).json()[0]["state"])


def test_halt_and_resume_a_market() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10**8)
        h.index(".BXBT", 50_000)
        answer = _post(h, "/admin/instrument/state", {"symbol": "XBTUSD", "state": "Closed"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["seq"] == h.sequencer.seq
        assert _state(h, "XBTUSD") == "Closed"
        order = {"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 49_000}
        assert h.signed("POST", "/order", body=order).status_code == 400  # halted
        assert (
            _post(h, "/admin/instrument/state", {"symbol": "XBTUSD", "state": "Open"}).status_code
            == 200
        )
        assert _state(h, "XBTUSD") == "Open"
        assert h.signed("POST", "/order", body=order).status_code == 200


def test_instruments_list_and_system_accounts() -> None:
    with harness() as h:
        rows = h.client.get("/api/v1/admin/instruments", headers=OP).json()
        assert {"XBTUSD", "ETHUSDT", ".BXBT"} <= {r["symbol"] for r in rows}
        h.deposit(ALICE, "XBt", 10**8)
        accounts = h.client.get("/api/v1/admin/accounts", headers=OP).json()
        external = [r for r in accounts if r["name"] == "external" and r["currency"] == "XBt"]
        assert external and external[0]["amount"] == -(10**8)
        assert all(r["account"] < 0 for r in accounts)


def test_interest_rate_fee_tier_and_listing_are_commands() -> None:
    with harness() as h:
        applied: list[Any] = []
        h.sequencer.subscribe_batches(applied.extend)
        assert (
            _post(h, "/admin/interestRate", {"symbol": "XBTUSD", "rate": "0.0003"}).status_code
            == 200
        )
        assert _post(h, "/admin/feeTier", {"account": ALICE, "tier": 2}).status_code == 200
        commands = [a.command for a in applied]
        assert [type(c) for c in commands] == [SetInterestRate, SetFeeTier]
        assert commands[0].interest_ppb == 300_000 and commands[1].tier == 2
        assert not any(isinstance(e, Rejected) for a in applied for e in a.events)
        assert (
            _post(h, "/admin/listFuture", {"root": "XBT", "year": 2031, "quarter": 2}).status_code
            == 200
        )
        symbols = {
            r["symbol"] for r in h.client.get("/api/v1/instrument", params={"count": 500}).json()
        }
        assert "XBTM31" in symbols


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/admin/instrument/state", {"symbol": "XBTUSD", "state": "Settled"}),
        ("/admin/instrument/state", {"symbol": "NOPE", "state": "Closed"}),
        ("/admin/interestRate", {"symbol": "XBTUSD", "rate": "0.5"}),
        ("/admin/interestRate", {"symbol": "XBTUSD", "rate": "0.0000000001"}),
        ("/admin/interestRate", {"symbol": "XBTUSD", "rate": "lots"}),
        ("/admin/feeTier", {"account": -3, "tier": 1}),
        ("/admin/feeTier", {"account": ALICE, "tier": 1000}),
        ("/admin/listFuture", {"root": "XBT", "year": 2031, "quarter": 5}),
    ],
)
def test_bad_input_is_a_400_that_changes_nothing(path: str, body: dict[str, Any]) -> None:
    with harness() as h:
        before = (h.sequencer.seq, h.sequencer.engine.state_hash())
        answer = _post(h, path, body)
        assert answer.status_code == 400, answer.text
        assert (h.sequencer.seq, h.sequencer.engine.state_hash()) == before


@pytest.mark.parametrize("key", ["", "wrong"])
def test_without_the_operator_key_nothing_happens(key: str) -> None:
    with harness() as h:
        seq = h.sequencer.seq
        assert (
            _post(
                h, "/admin/instrument/state", {"symbol": "XBTUSD", "state": "Closed"}, key
            ).status_code
            == 403
        )
        assert (
            h.client.get("/api/v1/admin/accounts", headers={"x-operator-key": key}).status_code
            == 403
        )
        assert h.sequencer.seq == seq
