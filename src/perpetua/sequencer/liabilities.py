"""What the venue owes its users at one sequence number: the input of the proof of liabilities.

Definition (BitMEX's *margin balance*, as its proofs use): an account's liability in a currency
is its wallet balance (the ledger balance: deposits, less withdrawals completed or pending,
plus realised PnL, funding and fees; spot holds included) plus the unrealised PnL of its
derivatives positions settled in that currency, each valued at the mark price
(``markValue - currentCost``, rounded as the core rounds it). In minor units: XBt (satoshi),
USDt, Gwei, BMEx.

Rules:
1. One seq for everything: the figures are read from one engine image (a sequencer snapshot
   at a batch boundary, or a replay of the journal to exactly that seq), so every account and
   every currency is taken at the same instant, and replaying the journal to the seq gives the
   same figures (`replay_to`).
2. A positive margin balance is a liability. Zero is none. A negative margin balance (an
   account under water, waiting for liquidation) is not a liability and is not netted against
   others: it is reported separately in ``negative``.
3. The insurance fund (``ledger.INSURANCE``) is an account of its own in the proof, numbered
   ``INSURANCE_PROOF_ACCOUNT`` (0: user accounts start at 1).
4. The venue's own system accounts (fees earned, residue, clearing, the funding pool, money in
   transit to the chain) are not owed to users and are left out; pending withdrawals are
   reported in ``pending_withdrawals`` (already out of the users' wallet balances, still in the
   reserves until sent).
5. Every figure fits an unsigned 64-bit integer (the proof format's limit), checked here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, NamedTuple

from perpetua.core.engine import Engine
from perpetua.core.invariant import invariant
from perpetua.core.ledger import INSURANCE, WITHDRAWAL_TRANSIT
from perpetua.core.margin import unrealised_pnl
from perpetua.core.units import CURRENCIES
from perpetua.sequencer.codec import CodecError, decode_command
from perpetua.sequencer.journal import iter_records
from perpetua.sequencer.recovery import (
    EngineFactory,
    RecoveryError,
    data_paths,
    default_engine,
    restore_snapshot,
)
from perpetua.sequencer.snapshot import (
    SnapshotCorruptError,
    list_snapshots,
    read_snapshot,
)

__all__ = [
    "INSURANCE_PROOF_ACCOUNT",
    "LIABILITY_MAX",
    "Liabilities",
    "liabilities_of",
    "liabilities_of_snapshot",
    "replay_to",
]

INSURANCE_PROOF_ACCOUNT: Final = 0
LIABILITY_MAX: Final = 2**64 - 1  # the proof serialises values as unsigned 64-bit integers


class Liabilities(NamedTuple):
    seq: int  # the last command the figures include
    ts_ns: int  # the engine's time at that seq
    owed: dict[str, dict[int, int]]  # currency -> proof account -> liability (> 0)
    negative: dict[str, dict[int, int]]  # currency -> account -> negative margin balance (< 0)
    pending_withdrawals: dict[str, int]  # currency -> held for withdrawals not yet sent

    def total(self, currency: str) -> int:
        return sum(self.owed.get(currency, {}).values())


def _margin_balances(engine: Engine) -> dict[str, dict[int, int]]:
    state = engine.state
    balances: dict[str, dict[int, int]] = {}
    books = state.ledger.balances
    for currency in CURRENCIES:
        book = books.get(currency, {})
        figures = {account: amount for account, amount in book.items() if account > 0}
        if INSURANCE in book:
            figures[INSURANCE] = book[INSURANCE]
        balances[currency] = figures
    for market in state.markets.values():
        currency = market.spec.settl_currency
        figures = balances.setdefault(currency, {})
        for account, pos in market.positions.items():
            if pos.qty:
                figures[account] = figures.get(account, 0) + unrealised_pnl(market, pos)
    return balances


def liabilities_of(engine: Engine, seq: int) -> Liabilities:
    """The liabilities of ``engine``'s state, which must be the state after ``seq`` (rule 1)."""
    owed: dict[str, dict[int, int]] = {}
    negative: dict[str, dict[int, int]] = {}
    for currency, figures in _margin_balances(engine).items():
        for account in sorted(figures):
            amount = figures[account]
            proof_account = INSURANCE_PROOF_ACCOUNT if account == INSURANCE else account
            invariant(proof_account >= 0, f"system account {account} among liabilities")
            if amount > 0:
                invariant(amount <= LIABILITY_MAX, f"liability of {account} exceeds 64 bits")
                owed.setdefault(currency, {})[proof_account] = amount
            elif amount < 0:
                negative.setdefault(currency, {})[proof_account] = amount
        invariant(sum(owed.get(currency, {}).values()) <= LIABILITY_MAX, "total exceeds 64 bits")
    pending = {
        currency: book[WITHDRAWAL_TRANSIT]
        for currency, book in engine.state.ledger.balances.items()
        if book.get(WITHDRAWAL_TRANSIT, 0) > 0
    }
    return Liabilities(seq, engine.state.ts_ns, owed, negative, pending)


def liabilities_of_snapshot(
    path: Path, engine_factory: EngineFactory = default_engine
) -> Liabilities:
    """The liabilities at the seq of the sequencer snapshot file ``path`` (its stored hash is
    checked on restore)."""
    try:
        snapshot = read_snapshot(path)
    except SnapshotCorruptError as error:
        raise RecoveryError(str(error)) from None
    engine = restore_snapshot(snapshot, engine_factory)
    return liabilities_of(engine, snapshot.seq)


def replay_to(
    data_dir: Path | str, seq: int, engine_factory: EngineFactory = default_engine
) -> Engine:
    """The engine after exactly ``seq``, rebuilt from the newest snapshot at or below ``seq``
    (none: from the start) and the journal; read-only, safe beside a running venue.
    Raises RecoveryError if the journal does not reach ``seq``."""
    paths = data_paths(data_dir)
    engine = engine_factory()
    start = 1
    candidates = [s for s in list_snapshots(paths.snapshots) if s.seq <= seq] if seq else []
    for candidate in reversed(candidates):
        try:
            engine = restore_snapshot(read_snapshot(candidate.path), engine_factory)
        except (SnapshotCorruptError, RecoveryError):
            continue
        start = candidate.seq + 1
        break
    expected = start
    if expected <= seq:
        for record_seq, payload in iter_records(paths.journal, start):
            if record_seq != expected:
                raise RecoveryError(f"journal record seq {record_seq} where {expected} was due")
            try:
                engine.apply(decode_command(payload))
            except CodecError as error:
                raise RecoveryError(f"journal record seq {record_seq}: {error}") from None
            expected += 1
            if expected > seq:
                break
    if expected <= seq:
        raise RecoveryError(f"the journal ends at seq {expected - 1}, before seq {seq}")
    return engine
