"""Liabilities from a real sequencer at one seq: a known book gives exactly its figures, a
random trading workload's figures equal the ledger plus unrealised PnL at that seq, the
published proofs open to each account's total with its nonce, and replaying the journal to the
seq reproduces the same liabilities (the random split differs, the totals do not)."""

from pathlib import Path

import pytest

from perpetua.core.calendar import utc_ns
from perpetua.core.commands import Deposit, WithdrawalRequest
from perpetua.core.ledger import INSURANCE, WITHDRAWAL_TRANSIT
from perpetua.sequencer.clock import SimulatedClock
from perpetua.sequencer.journal import FsyncPolicy, JournalConfig
from perpetua.sequencer.liabilities import (
    INSURANCE_PROOF_ACCOUNT,
    liabilities_of,
    liabilities_of_snapshot,
    replay_to,
)
from perpetua.sequencer.runner import Sequencer, SequencerConfig
from perpetua.services.porl.service import ProofService
from perpetua.services.server_key import load_server_key
from tests.sequencer.workload import drive, workload
from tests.services.porl import independent

START_NS = utc_ns(2026, 3, 1, 12, 0)
CONFIG = SequencerConfig(
    snapshot_interval_commands=0,
    journal=JournalConfig(fsync_policy=FsyncPolicy.NONE),
    journal_prune=False,
)


def open_sequencer(data_dir: Path) -> tuple[Sequencer, SimulatedClock]:
    clock = SimulatedClock(START_NS)
    return Sequencer.open(data_dir, clock=clock, config=CONFIG), clock


def expected_figures(engine) -> dict[str, dict[int, int]]:  # type: ignore[no-untyped-def]
    """Wallet + unrealised PnL per account, computed here from the state's parts."""
    state = engine.state
    figures: dict[str, dict[int, int]] = {}
    for currency, book in state.ledger.balances.items():
        for account, amount in book.items():
            if account > 0 or account == INSURANCE:
                figures.setdefault(currency, {})[account] = amount
    for market in state.markets.values():
        for account, pos in market.positions.items():
            if pos.qty and market.mark_fine:
                book = figures.setdefault(market.spec.settl_currency, {})
                upnl = market.value_fine(pos.qty, market.mark_fine) - pos.cost
                book[account] = book.get(account, 0) + upnl
    return {
        currency: {
            (INSURANCE_PROOF_ACCOUNT if a == INSURANCE else a): v for a, v in book.items() if v > 0
        }
        for currency, book in figures.items()
        if any(v > 0 for v in book.values())
    }


def check_published(service: ProofService, manifest, owed) -> None:  # type: ignore[no-untyped-def]
    height = manifest["height"]
    assert [row["currency"] for row in manifest["liabilities"]] == sorted(owed)
    for row in manifest["liabilities"]:
        currency = row["currency"]
        data = (service.publication.root / str(height) / row["filename"]).read_bytes()
        book = owed[currency]
        assert row["total"] == sum(book.values())
        for account, amount in book.items():
            nonce = service.nonces.nonce_of(account)
            total, root_total, digest = independent.validate(data, account, account_nonce=nonce)
            assert (total, root_total, digest) == (amount, row["total"], row["rootDigest"])


def test_a_known_book_publishes_exactly_its_figures(tmp_path: Path) -> None:
    sequencer, clock = open_sequencer(tmp_path / "data")
    with sequencer:
        steps = [
            Deposit(0, 1, "XBt", 100_000_000, "d1"),
            Deposit(0, 2, "XBt", 5_000, "d2"),
            Deposit(0, 2, "USDt", 7, "d3"),
            Deposit(0, 4, "XBt", 1_000, "d4"),
            WithdrawalRequest(0, 4, "XBt", 300, 10, "w1"),
        ]
        drive(sequencer, clock, steps)
        service = ProofService(tmp_path / "data", load_server_key(tmp_path / "data"), sequencer)
        manifest = service.take_snapshot()
    owed = {"USDt": {2: 7}, "XBt": {1: 100_000_000, 2: 5_000, 4: 690}}
    check_published(service, manifest, owed)
    assert manifest["height"] == manifest["seq"] == 5
    solvency = service.publication.root / "5" / "solvency-5.json"
    assert b'"pendingWithdrawals": 310' in solvency.read_bytes()
    # /porl/nonce's figures: from the encrypted balances, and the same from the tree without them
    answers = [service.nonce(account, "XBt") for account in (1, 2, 4, 9)]
    assert [a["balance"] for a in answers] == [100_000_000, 5_000, 690, 0]
    for balances in (tmp_path / "data" / "secrets" / "porl-balances").iterdir():
        assert b"100000000" not in balances.read_bytes()  # encrypted at rest
        balances.unlink()
    assert [service.nonce(a, "XBt")["balance"] for a in (1, 2, 4, 9)] == [
        100_000_000,
        5_000,
        690,
        0,
    ]
    engine = replay_to(tmp_path / "data", 5)
    assert engine.state.ledger.balances["XBt"][WITHDRAWAL_TRANSIT] == 310
    assert liabilities_of(engine, 5).owed == owed


def test_negative_equity_is_reported_apart_not_netted(tmp_path: Path) -> None:
    sequencer, clock = open_sequencer(tmp_path / "data")
    with sequencer:
        drive(sequencer, clock, [Deposit(0, 1, "XBt", 500, "d1")])
    engine = replay_to(tmp_path / "data", 1)
    engine.state.ledger.cell(INSURANCE, "XBt").balance = -40  # bankruptcy cover drew it down
    found = liabilities_of(engine, 1)
    assert found.owed == {"XBt": {1: 500}}
    assert found.negative == {"XBt": {INSURANCE_PROOF_ACCOUNT: -40}}
    assert found.total("XBt") == 500


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 11])
def test_a_trading_book_equals_the_ledger_and_replays(tmp_path: Path, seed: int) -> None:
    data_dir = tmp_path / "data"
    sequencer, clock = open_sequencer(data_dir)
    steps = workload(seed, 600, accounts=6)
    with sequencer:
        drive(sequencer, clock, steps[:400])
        service = ProofService(data_dir, load_server_key(data_dir), sequencer)
        manifest = service.take_snapshot()
        snapshot_path = sequencer.request_snapshot().result(30)  # same seq: nothing ran since
        drive(sequencer, clock, steps[400:])  # the journal runs on past the proof
    seq = manifest["seq"]
    at_seq = replay_to(data_dir, seq)
    owed = expected_figures(at_seq)
    assert any(m.positions for m in at_seq.state.markets.values())
    check_published(service, manifest, owed)
    again = liabilities_of(at_seq, seq)
    assert again.owed == owed == liabilities_of_snapshot(snapshot_path).owed
    # a second proof from the replayed state: a different split, the same totals
    republished = service.publish(again, height=seq + 1_000_000)
    for before, after in zip(manifest["liabilities"], republished["liabilities"], strict=True):
        assert before["total"] == after["total"] and before["rootDigest"] != after["rootDigest"]
    check_published(service, republished, owed)


def test_nonces_are_random_kept_for_life_and_encrypted_at_rest(tmp_path: Path) -> None:
    from perpetua.services.porl.nonces import NONCE_FILE, NonceStore

    key = load_server_key(tmp_path)
    store = NonceStore(tmp_path, key)
    made = store.nonces_for([1, 2, 3])
    assert len({made[a] for a in made}) == 3 and all(len(n) == 32 for n in made.values())
    assert store.nonce_of(2) == made[2]
    again = NonceStore(tmp_path, key)  # a restart: the same nonces, for the account's lifetime
    assert again.nonces_for([3, 1, 4]) == {1: made[1], 3: made[3], 4: again.nonce_of(4)}
    stored = (tmp_path / NONCE_FILE).read_bytes()
    for nonce in (*made.values(), again.nonce_of(4)):
        assert nonce not in stored and nonce.hex().encode() not in stored  # encrypted
    assert (tmp_path / NONCE_FILE).stat().st_mode & 0o777 == 0o600
