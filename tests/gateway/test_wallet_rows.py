"""REST and WebSocket give the same wallet history rows for the same facts (issue 11).

Real trading through the real server (uvicorn on a socket, the WebSocket over it, the read
models projected on their thread): deposits, a taker order that fills against two resting
orders in one command (two executions, fees on both sides), a funding payment, a withdrawal
completed and one canceled. Every ``transact`` row the WebSocket sent, with its updates
applied by ``transactID``, equals the ``/user/walletHistory`` row of the same id, field by
field, and neither side has a row the other lacks.
"""

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import pytest
import websockets

from perpetua.core.commands import (
    SetInterestRate,
    Tick,
    WithdrawalCancel,
    WithdrawalComplete,
    WithdrawalRequest,
)
from perpetua.gateway.auth import sign
from perpetua.wire.values import parse_iso_ns
from tests.gateway.live import Live, live_gateway

XBT = 100_000_000
BUYER, SELLER = 3101, 3102
WS_QUIET_S = 5.0  # how long to wait for the rows still in flight


async def _subscribed(live: Live, key: Any) -> Any:
    ws = await websockets.connect(live.ws_base + "/realtime")
    await ws.recv()  # welcome
    expires = int(time.time()) + 60
    signature = sign(key.secret, "GET", "/realtime", str(expires))
    await ws.send(json.dumps({"op": "authKeyExpires", "args": [key.key_id, expires, signature]}))
    assert json.loads(await ws.recv())["success"] is True
    await ws.send(json.dumps({"op": "subscribe", "args": ["transact"]}))
    assert json.loads(await ws.recv())["subscribe"] == "transact"
    partial = json.loads(await ws.recv())
    assert partial["action"] == "partial" and partial["keys"] == ["transactID"]
    return ws


async def _ws_rows(ws: Any, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """The transact table as the WebSocket built it, once it holds every id in ``wanted``."""
    table: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + WS_QUIET_S
    while not wanted <= table.keys() or any(
        table[i].get("transactStatus") == "Pending" for i in wanted & table.keys()
    ):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"missing on the WebSocket: {sorted(wanted - table.keys())}"
        message = json.loads(await asyncio.wait_for(ws.recv(), remaining), parse_float=Decimal)
        if message.get("table") != "transact":
            continue
        for row in message["data"]:
            if message["action"] == "insert":
                assert row["transactID"] not in table, "an id inserted twice"
                table[row["transactID"]] = row
            else:
                assert message["action"] == "update", message
                table[row["transactID"]].update(row)
    return table


async def _rest_rows(live: Live, key: Any) -> dict[str, dict[str, Any]]:
    response = await live.signed("GET", "/user/walletHistory?currency=XBt&count=1000", key)
    assert response.status_code == 200, response.text
    rows = json.loads(response.text, parse_float=Decimal)
    return {row["transactID"]: row for row in rows}


async def _trade(live: Live, keys: dict[int, Any]) -> None:
    for price in (89_554, 89_555):  # two resting sells: the buy takes both in one command
        order = {"symbol": "XBTUSD", "side": "Sell", "orderQty": 3_000, "price": price}
        response = await live.signed("POST", "/order", keys[SELLER], json.dumps(order).encode())
        assert response.status_code == 200, response.text
    order = {"symbol": "XBTUSD", "side": "Buy", "orderQty": 6_000, "price": 89_555}
    response = await live.signed("POST", "/order", keys[BUYER], json.dumps(order).encode())
    assert response.status_code == 200 and response.json()["ordStatus"] == "Filled"


async def _fund(live: Live) -> None:
    response = await live.http.get("/api/v1/instrument", params={"symbol": "XBTUSD"})
    stamp = parse_iso_ns(response.json()[0]["fundingTimestamp"])
    assert stamp is not None
    live.sequencer.execute(Tick(stamp))


@pytest.mark.parametrize("subscribed", [(BUYER, SELLER), (BUYER,)])
def test_websocket_transact_rows_are_the_wallet_history_rows(subscribed: tuple[int, ...]) -> None:
    """With one side unsubscribed too: the gateway makes a command's rows only when one of its
    accounts has a subscriber, and the ids must not depend on it."""

    async def main() -> None:
        async with live_gateway() as live:
            keys = {
                account: live.accounts.create_api_key(
                    account, ["order"], key_id=f"k{account}", secret=f"s{account}"
                )
                for account in (BUYER, SELLER)
            }
            sockets = {account: await _subscribed(live, keys[account]) for account in subscribed}
            live.sequencer.execute(SetInterestRate(0, "XBTUSD", 143_901))
            live.index(".BXBT", 8_955_437, 100)
            for account in keys:
                live.deposit(account, "XBt", 10 * XBT)
            await _trade(live, keys)
            await _fund(live)
            live.sequencer.execute(WithdrawalRequest(0, BUYER, "XBt", XBT, 20_000, "w-done"))
            live.sequencer.execute(WithdrawalRequest(0, SELLER, "XBt", XBT, 20_000, "w-back"))
            live.sequencer.execute(WithdrawalComplete(0, "w-done"))
            live.sequencer.execute(WithdrawalCancel(0, "w-back"))
            kinds: dict[str, int] = {}
            withdrawals: list[str] = []
            for account in subscribed:
                rest = await _rest_rows(live, keys[account])
                ws = await _ws_rows(sockets[account], set(rest))
                await sockets[account].close()
                assert set(ws) == set(rest)
                for transact_id, row in rest.items():
                    sent = {k: v for k, v in row.items() if v is not None}  # nulls left out
                    assert ws[transact_id] == sent, transact_id
                    kinds[row["transactType"]] = kinds.get(row["transactType"], 0) + 1
                    if row["transactType"] == "Withdrawal":
                        withdrawals.append(row["transactStatus"])
                if account == BUYER:  # one row per execution: two fills, two rows
                    fills = [r for r in rest.values() if r["transactType"] == "RealisedPNL"]
                    assert len(fills) == 3 and sum(1 for r in fills if r["fee"]) >= 2
            assert kinds["Deposit"] == len(subscribed) == kinds["Withdrawal"]
            assert kinds["RealisedPNL"] >= 2 * len(subscribed)  # two fills each, and funding
            assert sorted(withdrawals) == ["Canceled", "Completed"][-len(subscribed) :]

    asyncio.run(main())
