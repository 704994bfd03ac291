"""Notifications to one trader and to everyone, as BitMEX ``GlobalNotification`` rows: the
WebSocket ``privateNotifications`` and ``publicNotifications`` tables and ``GET
/globalNotification``.

Invariants:
1. ``Notifications`` is the one place rows are made (``id`` counts up from 1 in this process;
   ``date`` is the time given, or the wall clock; ``type`` is ``success``, ``error`` or
   ``info``, the model's enum).
2. ``notify`` and ``broadcast`` may be called from any thread (a wallet follower's, the event
   loop's): rows are added under a lock, then each listener is called on the caller's thread;
   the gateway's listener forwards to its event loop.
3. Each account keeps its newest ``PRIVATE_KEPT_MAX`` rows, the public table its newest
   ``PUBLIC_KEPT_MAX``. They are not durable: a notification tells of a fact whose record is
   elsewhere (the journal, the read models), so a restart forgets them.

Who calls it: the gateway derives liquidation, auto-deleveraging, withdrawal-status, halt,
resume, listing and settlement notices from the event stream and margin calls from a periodic
check (``gateway.notices``); other services (wallets: a withdrawal broadcast or confirmed on
chain) call ``notify`` through the ``NotificationSink`` port (``venue.notifications``).
"""

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final, Literal, Protocol

from perpetua.wire.values import iso_ms

__all__ = [
    "NOTIFICATION_TTL_MS",
    "PRIVATE_KEPT_MAX",
    "PUBLIC_KEPT_MAX",
    "Kind",
    "NotificationSink",
    "Notifications",
]

PRIVATE_KEPT_MAX: Final = 50  # per account
PUBLIC_KEPT_MAX: Final = 50
NOTIFICATION_TTL_MS: Final = 3_600_000  # how long a client shows one (the model's ttl)

Kind = Literal["success", "error", "info"]
Listener = Callable[[int | None, dict[str, Any]], None]  # account (None: public), row


class NotificationSink(Protocol):
    """What a service needs to tell a trader, or everyone, something."""

    def notify(
        self, account: int, title: str, body: str, kind: Kind = "info", ts_ns: int | None = None
    ) -> None: ...

    def broadcast(
        self, title: str, body: str, kind: Kind = "info", ts_ns: int | None = None
    ) -> None: ...


class Notifications:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_id = 1
        self._private: dict[int, deque[dict[str, Any]]] = {}
        self._public: deque[dict[str, Any]] = deque(maxlen=PUBLIC_KEPT_MAX)
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def notify(
        self, account: int, title: str, body: str, kind: Kind = "info", ts_ns: int | None = None
    ) -> None:
        with self._lock:
            row = self._row(title, body, kind, ts_ns)
            kept = self._private.setdefault(account, deque(maxlen=PRIVATE_KEPT_MAX))
            kept.append(row)
        for listener in self._listeners:
            listener(account, row)

    def broadcast(
        self, title: str, body: str, kind: Kind = "info", ts_ns: int | None = None
    ) -> None:
        with self._lock:
            row = self._row(title, body, kind, ts_ns)
            self._public.append(row)
        for listener in self._listeners:
            listener(None, row)

    def private_rows(self, account: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._private.get(account, ()))

    def public_rows(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._public)

    def _row(self, title: str, body: str, kind: Kind, ts_ns: int | None) -> dict[str, Any]:
        row = {
            "id": self._next_id,
            "date": iso_ms(ts_ns if ts_ns is not None else time.time_ns()),
            "title": title,
            "body": body,
            "ttl": NOTIFICATION_TTL_MS,
            "type": kind,
            "closable": True,
            "persist": True,
            "waitForVisibility": True,
        }
        self._next_id += 1
        return row
