"""What the wallets need from the rest of the venue, as small protocols.

- ``Submit``: a core command in, the sequencer's ``Result`` out, synchronously (the runtime
  passes ``Sequencer.execute``; the wallets call it from worker threads, never the event loop).
- ``Verifier``: the identity service's second factor (a current TOTP code, consumed: a code
  works once) and its notices (mail to the account's owner).
- ``Clock``: wall time in ns (tests move it: the 24 h address lock).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from perpetua.core.commands import Command
from perpetua.core.events import Rejected
from perpetua.core.reasons import Reason
from perpetua.sequencer import Result

__all__ = ["Clock", "Submit", "Verifier", "refusal", "rejection"]

Submit = Callable[[Command], Result]
Clock = Callable[[], int]


class Verifier(Protocol):
    def second_factor_ok(self, user_id: int, code: str) -> bool: ...

    def send_notice(self, user_id: int, subject: str, body: str) -> None: ...


def refusal(result: Result) -> Rejected | None:
    """The core's rejection when it refused the command (reason and cause), else None."""
    for event in result.events:
        if isinstance(event, Rejected):
            return event
    return None


def rejection(result: Result) -> Reason | None:
    """The core's reason when it refused the command, else None."""
    refused = refusal(result)
    return None if refused is None else Reason(refused.reason)
