"""The deposit follower on network ``btc`` over recorded Bitcoin Core answers
(tests/chain/recorded/): outputs paying deposit addresses credited in satoshis (XBt) through
the real core once confirmed; nothing else. (No bitcoind on these machines: the regtest test in
tests/chain/test_bitcoin.py runs only where it is installed.)"""

from __future__ import annotations

from pathlib import Path

from perpetua.chain.bitcoin import BitcoinWatcher
from perpetua.core.catalogue import default_catalogue
from perpetua.core.engine import Engine
from perpetua.services.wallets import DefaultPolicy, Wallets
from perpetua.services.wallets.networks import bitcoin_network
from perpetua.store import default_url, migrate, open_engine
from tests.chain.test_bitcoin import VPUB, Recorded
from tests.gateway.fakes import InlineSequencer
from tests.services.wallets.rig import FakeVerifier


def test_bitcoin_outputs_to_deposit_addresses_are_credited(tmp_path: Path) -> None:
    url = default_url(str(tmp_path))
    migrate(url)
    engine = Engine(default_catalogue())
    sequencer = InlineSequencer(engine)
    network = bitcoin_network(confirmations=2)
    node = Recorded()
    watcher = BitcoinWatcher("btc", node, VPUB, network.assets["XBt"].asset, chain="regtest")
    wallets = Wallets(
        open_engine(url), {"btc": network}, {"btc": watcher}, {}, FakeVerifier(),
        sequencer.execute, DefaultPolicy(), start_block=100,
    )  # fmt: skip
    assert wallets.book.deposit_address(7, "XBt", "btc").startswith("bcrt1q")
    wallets.book.deposit_address(8, "XBt", "btc")
    report = wallets.followers["btc"].step()  # head 102: block 101 has 2 confirmations
    assert report.seen == 2 and len(report.credited) == 1
    assert engine.state.ledger.balance(7, "XBt") == 12_345_678
    assert engine.state.ledger.balance(8, "XBt") == 0  # block 102: one confirmation so far
    assert [d.status for d in wallets.deposits(8)] == ["Pending"]
    assert not any(call.startswith("sendrawtransaction") for call in node.calls)
