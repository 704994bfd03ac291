"""``ScratchEngine``: a private, in-memory engine for what-if runs (backtests), beside the venue.

1. It is the venue's own ``core.Engine`` over the given instruments, with no journal, no
   snapshot and no thread: the caller stamps each command's time, which must not go back.
2. Nothing it does reaches the venue: its accounts and ledger are its own.
3. ``audit`` runs the core's invariants (ledger conservation, positions, indexes) on demand.
"""

from collections.abc import Sequence

from perpetua.core import audit as core_audit
from perpetua.core.commands import Command
from perpetua.core.engine import Engine
from perpetua.core.events import Event
from perpetua.core.instruments import InstrumentSpec

__all__ = ["ScratchEngine"]


class ScratchEngine:
    def __init__(self, instruments: tuple[InstrumentSpec, ...]) -> None:
        self._engine = Engine(instruments)

    def apply(self, command: Command) -> Sequence[Event]:
        return self._engine.apply(command)

    def balance(self, account: int, currency: str) -> int:
        return int(self._engine.state.ledger.balance(account, currency))

    def audit(self) -> None:
        core_audit.audit(self._engine.state)
