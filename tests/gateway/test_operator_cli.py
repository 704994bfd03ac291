"""The operator's CLI (``perpetua operator``) against a real server: listing instruments, halting
and resuming a market, an interest rate, a fee tier, listing a future and the system accounts
(insurance fund included), each change one journaled command of the sequencer (issue 11)."""

import argparse
import asyncio
from typing import Any

from perpetua.core.commands import ListFuture, SetFeeTier, SetInstrumentState, SetInterestRate
from perpetua.core.ledger import SYSTEM_ACCOUNTS
from perpetua.runtime.operator_client import add_operator_parser, run_operator
from tests.gateway.live import Live, live_gateway

ALICE = 1001


async def _operator(live: Live, *words: str) -> Any:
    parser = argparse.ArgumentParser()
    add_operator_parser(parser.add_subparsers(dest="command"), "operator")
    args = parser.parse_args(
        ["operator", "--url", live.base, "--operator-key", "operator-secret", *words]
    )
    return await asyncio.to_thread(run_operator, args)  # urllib: off the server's loop


def test_every_operator_command_of_the_cli_is_a_sequencer_command() -> None:
    async def main() -> None:
        async with live_gateway() as live:
            applied: list[Any] = []
            live.sequencer.subscribe_batches(applied.extend)
            rows = await _operator(live, "instruments")
            assert {"XBTUSD", ".BXBT"} <= {r["symbol"] for r in rows}
            assert (await _operator(live, "halt", "XBTUSD"))["state"] == "Closed"
            assert (await _operator(live, "resume", "XBTUSD"))["state"] == "Open"
            await _operator(live, "interest-rate", "XBTUSD", "0.0003")
            await _operator(live, "fee-tier", str(ALICE), "2")
            await _operator(live, "list-future", "XBT", "2031", "2")
            kinds = [type(a.command) for a in applied]
            assert kinds == [
                SetInstrumentState,
                SetInstrumentState,
                SetInterestRate,
                SetFeeTier,
                ListFuture,
            ]
            assert [a.seq for a in applied] == sorted({a.seq for a in applied})  # journaled
            live.deposit(ALICE, "XBt", 10**8)
            accounts = await _operator(live, "accounts")
            names = {r["name"] for r in accounts}
            assert "external" in names and names <= set(SYSTEM_ACCOUNTS.values()), names
            assert all(r["account"] < 0 for r in accounts)

    asyncio.run(main())
