"""Named crash points for the kill -9 tests: ``PERPETUA_WALLETS_CRASH_AT=<name>`` makes the
process SIGKILL itself when it reaches ``crash_point(<name>)`` (no cleanup, no flush: what a
power cut does). Unset in production, where ``crash_point`` is one dict lookup."""

from __future__ import annotations

import os
import signal

__all__ = ["CRASH_AT_ENV", "POINTS", "crash_point"]

CRASH_AT_ENV = "PERPETUA_WALLETS_CRASH_AT"
POINTS = (
    "withdrawal.requested",  # row written, before the core's hold
    "withdrawal.held",  # the core held the money, row still Requested
    "signer.recorded",  # signed bytes recorded, not broadcast
    "signer.broadcast",  # broadcast, row still Signed
    "signer.completed",  # the core completed it, row still Broadcast
)


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
