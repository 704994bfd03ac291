"""The deposit follower on blocks of 1,000 ERC-20 transfers to deposit addresses (issue 14).

A real anvil node (automine off, block gas limit off); 1,000 deposit addresses (accounts
1..1000) derived from an xpub; ten dev accounts send one USDT transfer to each per block
(eth_sendTransaction in JSON-RPC batches; anvil signs), then one block is mined. The follower
is the venue's (`services.wallets.follower`) over SQLite, crediting through the real core
(`Engine`) behind an in-process sequencer (no journal fsync: the figure is the follower's).

Figures (JSON on stdout):
- catch-up: CATCH_UP_BLOCKS full blocks plus the confirmations, read and credited in one step:
  blocks/s and deposits credited/s;
- latency: per block, the time from the confirming block being mined to the step that credits
  it returning (the follower polls; its poll interval, 1 s by default, adds up to that much in
  the venue): p50/p99 over deposits.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from perpetua.chain import evm  # noqa: E402
from perpetua.chain.anvil import DEV_FUNDER_KEY, start_anvil  # noqa: E402
from perpetua.chain.ethereum import EthereumSigner, EthereumWatcher  # noqa: E402
from perpetua.chain.keys import eth_account_xpub, new_mnemonic  # noqa: E402
from perpetua.chain.rpc import JsonRpc  # noqa: E402
from perpetua.core.catalogue import default_catalogue  # noqa: E402
from perpetua.core.engine import Engine  # noqa: E402
from perpetua.sequencer import Result  # noqa: E402
from perpetua.services.wallets import DefaultPolicy, Wallets, default_networks  # noqa: E402
from perpetua.store import default_url, migrate, open_engine  # noqa: E402

TRANSFERS_PER_BLOCK = 1_000
CATCH_UP_BLOCKS = 5
LATENCY_BLOCKS = 3
CONFIRMATIONS = 3
SENDERS = 10
USDT = 10**6


class Inline:
    def __init__(self) -> None:
        self.engine = Engine(default_catalogue())
        self.seq = 0

    def execute(self, command: object) -> Result:
        self.seq += 1
        stamped = command._replace(ts_ns=time.time_ns())  # type: ignore[attr-defined]
        return Result(self.seq, stamped.ts_ns, self.engine.apply(stamped))


class Verifier:
    def second_factor_ok(self, user_id: int, code: str) -> bool:
        return False

    def send_notice(self, user_id: int, subject: str, body: str) -> None:
        return None


def fill_block(
    rpc: JsonRpc, token: str, senders: list[str], addresses: list[str], amount: int
) -> None:
    """One block of transfers, one to each address, spread over ``senders`` (anvil's unlocked
    dev accounts: it keeps at most about 128 pending transactions per sender)."""
    nonces = {sender: rpc.nonce(sender, "pending") for sender in senders}
    calls = []
    for i, address in enumerate(addresses):
        sender = senders[i % len(senders)]
        nonce = nonces[sender]
        nonces[sender] += 1
        tx = {
            "from": sender, "to": token, "data": evm.transfer_data(address, amount),
            "gas": hex(100_000), "nonce": hex(nonce),
        }  # fmt: skip
        calls.append(("eth_sendTransaction", (tx,)))
    rpc.batch(calls)
    rpc.call("anvil_mine", "0x1")
    block = rpc.block(rpc.block_number(), full=False)
    assert block is not None and len(block["transactions"]) == len(addresses), "block not full"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    node = start_anvil(accounts=SENDERS, extra_args=("--disable-block-gas-limit",))
    rpc = JsonRpc(node.url)
    try:
        token = evm.deploy(rpc, DEV_FUNDER_KEY)
        senders = [evm.checksum(a) for a in rpc.call("eth_accounts")][:SENDERS]
        for sender in senders:
            evm.mint(rpc, DEV_FUNDER_KEY, token, sender, 10**9 * USDT)
        with tempfile.TemporaryDirectory(prefix="perpetua-bench-wallets-") as directory:
            url = default_url(directory)
            migrate(url)
            sequencer = Inline()
            networks = default_networks(token, confirmations=CONFIRMATIONS)
            assets = {c: r.asset for c, r in networks["eth"].assets.items()}
            hot_key = "0x" + bytes(evm.Account.create().key).hex()
            wallets = Wallets(
                open_engine(url), networks,
                {"eth": EthereumWatcher("eth", rpc, eth_account_xpub(new_mnemonic()), assets)},
                {"eth": EthereumSigner("eth", rpc, hot_key, assets)}, Verifier(),
                sequencer.execute, DefaultPolicy(), start_block=rpc.block_number(),
            )  # fmt: skip
            follower = wallets.followers["eth"]
            addresses = [
                wallets.book.deposit_address(account, "USDt", "eth")
                for account in range(1, TRANSFERS_PER_BLOCK + 1)
            ]
            follower.step()
            rpc.call("evm_setAutomine", False)
            for _ in range(CATCH_UP_BLOCKS):
                fill_block(rpc, token, senders, addresses, 2 * USDT)
            rpc.call("anvil_mine", hex(CONFIRMATIONS - 1))
            began = time.perf_counter()
            report = follower.step()
            catch_up_s = time.perf_counter() - began
            assert len(report.credited) == CATCH_UP_BLOCKS * TRANSFERS_PER_BLOCK
            latencies: list[float] = []
            for _ in range(LATENCY_BLOCKS):
                fill_block(rpc, token, senders, addresses, 3 * USDT)
                follower.step()  # seen, pending
                rpc.call("anvil_mine", hex(CONFIRMATIONS - 1))  # the confirming block
                began = time.perf_counter()
                credited = follower.step().credited
                latencies += [time.perf_counter() - began] * len(credited)
            assert len(latencies) == LATENCY_BLOCKS * TRANSFERS_PER_BLOCK
            total = sequencer.engine.state.ledger.balance(1, "USDt")
            assert total == CATCH_UP_BLOCKS * 2 * USDT + LATENCY_BLOCKS * 3 * USDT
        blocks = CATCH_UP_BLOCKS + CONFIRMATIONS - 1
        print(
            f"wallets: {blocks} blocks, {len(report.credited)} deposits in {catch_up_s:.2f} s",
            file=sys.stderr,
        )
        print(json.dumps({
            "transfers_per_block": TRANSFERS_PER_BLOCK,
            "catch_up_blocks": blocks,
            "catch_up_s": round(catch_up_s, 3),
            "blocks_per_s": round(blocks / catch_up_s, 2),
            "deposits_credited_per_s": round(len(report.credited) / catch_up_s, 1),
            "confirming_block_to_credit_p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "confirming_block_to_credit_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "load_average": os.getloadavg(),
        }))  # fmt: skip
    finally:
        rpc.close()
        node.stop()


if __name__ == "__main__":
    main()
