"""A wallets rig over real parts: a real anvil node with the committed USDT deployed, the real
core (``Engine``) behind an in-process sequencer, SQLite migrated to head, and a verifier that
accepts the code "123456" once per request and keeps the notices it would mail."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from perpetua.chain import evm
from perpetua.chain.anvil import DEV_FUNDER_ADDRESS, DEV_FUNDER_KEY
from perpetua.chain.ethereum import EthereumSigner, EthereumWatcher
from perpetua.chain.keys import eth_account_xpub, new_mnemonic
from perpetua.chain.rpc import JsonRpc
from perpetua.core.audit import conservation_totals
from perpetua.core.catalogue import default_catalogue
from perpetua.core.engine import Engine
from perpetua.core.ledger import FEES
from perpetua.services.wallets import DefaultPolicy, Wallets, default_networks
from perpetua.services.wallets.policy import WithdrawalPolicy
from perpetua.store import default_url, migrate, open_engine
from tests.gateway.fakes import InlineSequencer

GOOD_OTP = "123456"
ETH = 10**18
HOT_ETH_WEI = 100 * ETH
HOT_USDT = 1_000_000 * 10**6
CONFIRMATIONS = 3


class FakeVerifier:
    def __init__(self) -> None:
        self.notices: list[tuple[int, str, str]] = []
        self.used: set[tuple[int, str]] = set()

    def second_factor_ok(self, user_id: int, code: str) -> bool:
        return code == GOOD_OTP

    def send_notice(self, user_id: int, subject: str, body: str) -> None:
        self.notices.append((user_id, subject, body))

    def token(self) -> str:
        for _, subject, body in reversed(self.notices):
            if subject == "confirm your withdrawal":
                return body.split("token: ")[1].split()[0]
        raise AssertionError("no confirmation mail")


class Clock:
    def __init__(self) -> None:
        self.now_ns = 1_800_000_000 * 10**9

    def __call__(self) -> int:
        return self.now_ns


@dataclass
class Rig:
    rpc: JsonRpc
    token: str
    engine: Engine
    sequencer: InlineSequencer
    wallets: Wallets
    verifier: FakeVerifier
    clock: Clock
    hot_key: str
    mnemonic: str
    extra: dict[str, Any] = field(default_factory=dict)

    def balance(self, account: int, currency: str) -> int:
        return self.engine.state.ledger.balance(account, currency)

    def fees(self, currency: str) -> int:
        return self.engine.state.ledger.balance(FEES, currency)

    def external(self, currency: str) -> int:
        """What came in from the chain minus what went out, per the core (conservation)."""
        return conservation_totals(self.engine.state).get(currency, 0)

    def mine(self, blocks: int = 1) -> None:
        self.rpc.call("anvil_mine", hex(blocks))

    def follow(self) -> Any:
        return self.wallets.followers["eth"].step()

    def send(self) -> Any:
        return self.wallets.senders["eth"].step()

    def pay(self, to: str, amount_base: int, token: str | None) -> str:
        """The funder sends ETH (wei) or tokens (base units) to ``to``; mined at once."""
        signed = evm.sign_transfer(
            DEV_FUNDER_KEY, chain_id=self.rpc.chain_id(), nonce=self.rpc.nonce(DEV_FUNDER_ADDRESS),
            to=to, amount=amount_base, token=token, fee_wei=evm.max_fee(self.rpc),
        )  # fmt: skip
        evm.send_and_wait(self.rpc, signed)
        return signed.tx_hash


def build(rpc: JsonRpc, token: str, tmp_path: Path, policy: WithdrawalPolicy | None = None) -> Rig:
    """The rig over ``tmp_path``'s database; ``policy``: the withdrawal policy (default: the
    wallets' own, refusing one blocked address)."""
    url = default_url(str(tmp_path))
    migrate(url)
    engine = Engine(default_catalogue())
    sequencer = InlineSequencer(engine)
    mnemonic = new_mnemonic()
    hot_key = "0x" + bytes(Account.create().key).hex()
    networks = default_networks(token, confirmations=CONFIRMATIONS, approval_usdt=50_000)
    assets = {c: r.asset for c, r in networks["eth"].assets.items()}
    watcher = EthereumWatcher("eth", rpc, eth_account_xpub(mnemonic), assets)
    signer = EthereumSigner("eth", rpc, hot_key, assets)
    verifier = FakeVerifier()
    clock = Clock()
    wallets = Wallets(
        open_engine(url), networks, {"eth": watcher}, {"eth": signer}, verifier,
        sequencer.execute,
        policy or DefaultPolicy(blocked=["0x000000000000000000000000000000000000bad1"]),
        clock, start_block=rpc.block_number(),
    )  # fmt: skip
    rig = Rig(rpc, token, engine, sequencer, wallets, verifier, clock, hot_key, mnemonic)
    rig.pay(signer.hot_address, HOT_ETH_WEI, None)
    evm.mint(rpc, DEV_FUNDER_KEY, token, signer.hot_address, HOT_USDT)
    return rig


@pytest.fixture
def rig(anvil_rpc: JsonRpc, usdt: str, tmp_path: Path) -> Iterator[Rig]:
    yield build(anvil_rpc, usdt, tmp_path)
