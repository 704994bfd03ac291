"""What the gateway needs from its neighbours, as small protocols.

- ``SequencerPort``: ``await submit(cmd)`` returns a ``Result`` once the command is durable, or
  raises ``Overloaded`` when its bounded queue is full (orders and amends only); ``subscribe``
  registers a callback that receives ``(seq, ts_ns, command, events)`` for every command, in order.
- ``AccountsPort``: ``lookup_api_key(key_id)`` returns an ``ApiKeyRecord`` or ``None``.

The real implementations live in ``perpetua.sequencer`` and ``perpetua.services.accounts``;
``Overloaded`` is imported from the sequencer when it provides one so ``except`` clauses catch the
real class.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

__all__ = [
    "AccountsPort",
    "ApiKeyRecord",
    "EventCallback",
    "Overloaded",
    "Result",
    "SequencerPort",
]

try:  # the sequencer engineer's class, when it has landed
    from perpetua.sequencer.runner import Overloaded
except ImportError:  # pragma: no cover - depends on the tree

    class Overloaded(Exception):  # type: ignore[no-redef]
        """The sequencer's bounded queue is full: shed the request (HTTP 503)."""


class Result(NamedTuple):
    seq: int
    ts_ns: int
    events: Sequence[object]


EventCallback = Callable[[int, int, object, Sequence[object]], Any]


class SequencerPort(Protocol):
    async def submit(self, command: Any) -> Any: ...

    def subscribe(self, callback: EventCallback) -> Any: ...

    # optional: ``subscribe_batches(callback(list[Applied]))``, preferred when present


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as the gateway sees it; ``secret`` is decrypted."""

    key_id: str
    user_id: int
    secret: str
    permissions: tuple[str, ...] = ()
    cidr: tuple[str, ...] = ()
    enabled: bool = True
    name: str = ""
    nonce: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class AccountsPort(Protocol):
    def lookup_api_key(self, key_id: str) -> Any: ...
