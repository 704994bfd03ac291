"""`Replica`: an engine that applies a replicated journal, message by message, exactly once.

Cluster mode keeps the journal in a stream of messages, each holding consecutive records
(``[(seq, command payload), ...]``, `transport.stream`). Standby sequencers, gateways and
projectors each hold a replica: the same records in the same order give the same events and the
same ``state_hash()`` on every node (the core is deterministic), so a standby's state equals the
leader's at every message boundary and a gateway builds its views from the events its replica
derives.

Invariants
    - Messages are applied consecutively (``stream_seq`` + 1 each) and records consecutively
      (``applied_seq`` + 1 each): a gap or a repeat is a programmer error (the stream is fenced,
      `transport.journal`), never skipped silently.
    - Only one thread applies at a time.
    - ``checkpoints`` holds ``(seq, state_hash)`` at message boundaries, one each time the seq
      passes a multiple of ``checkpoint_every`` (0: none), the newest ``CHECKPOINTS_KEPT``: what
      operators and tests compare across nodes.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Final

from perpetua.core.engine import Engine
from perpetua.core.invariant import invariant
from perpetua.sequencer.codec import decode_command
from perpetua.sequencer.delivery import Applied

__all__ = ["CHECKPOINTS_KEPT", "Replica"]

CHECKPOINTS_KEPT: Final = 256


class Replica:
    """An engine plus how far into the replicated journal it is."""

    def __init__(
        self,
        engine: Engine,
        *,
        applied_seq: int = 0,
        stream_seq: int = 0,
        checkpoint_every: int = 0,
    ) -> None:
        self.engine = engine
        self.applied_seq = applied_seq
        self.stream_seq = stream_seq
        self.checkpoint_every = checkpoint_every
        self.checkpoints: collections.OrderedDict[int, str] = collections.OrderedDict()

    def apply_message(self, stream_seq: int, records: Sequence[tuple[int, bytes]]) -> list[Applied]:
        """Apply one message's records; the Applied records, in seq order."""
        invariant(
            stream_seq == self.stream_seq + 1,
            f"stream message {stream_seq} where {self.stream_seq + 1} was due",
        )
        applied: list[Applied] = []
        apply = self.engine.apply
        expected = self.applied_seq + 1
        for seq, payload in records:
            invariant(seq == expected, f"record seq {seq} where {expected} was due")
            command = decode_command(payload)
            applied.append(Applied(seq, command.ts_ns, command, apply(command)))
            expected = seq + 1
        before = self.applied_seq
        self.applied_seq = expected - 1
        self.stream_seq = stream_seq
        every = self.checkpoint_every
        if every and self.applied_seq // every != before // every:
            self.checkpoints[self.applied_seq] = self.engine.state_hash()
            while len(self.checkpoints) > CHECKPOINTS_KEPT:
                self.checkpoints.popitem(last=False)
        return applied
