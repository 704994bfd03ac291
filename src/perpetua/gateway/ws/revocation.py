"""Signed-in WebSocket sessions lose their key as soon as the key's rules stop admitting them.

Invariant: a session whose key was disabled (or its user), deleted, or no longer allows the
session's address is sent an error frame and a close frame within ``REVOCATION_DELAY_S_MAX``
of the change, and receives nothing private after that. ``sweep`` runs every
``SWEEP_INTERVAL_S``: it looks each distinct key up once through the gateway's key cache
(whose entries, and the accounts service's, live 0.35 s at most), then applies
``auth.key_refusal`` per session. A key that no longer exists counts as disabled.
"""

import asyncio
import logging

from perpetua.gateway.auth import key_refusal
from perpetua.gateway.errors import MSG_KEY_DISABLED, ApiError
from perpetua.gateway.surface import GatewaySurface
from perpetua.gateway.ws.fanout import Session

__all__ = ["REVOCATION_DELAY_S_MAX", "SWEEP_INTERVAL_S", "sweep", "watch_keys"]

log = logging.getLogger("perpetua.gateway.ws")
SWEEP_INTERVAL_S = 0.2
REVOCATION_DELAY_S_MAX = 1.0  # 0.35 s (service cache) + 0.35 s (gateway cache) + 0.2 s


async def sweep(gw: GatewaySurface) -> int:
    """Close every signed-in session its key no longer admits; returns how many."""
    by_key: dict[str, list[Session]] = {}
    for session in list(gw.fanout.sessions):
        if session.principal is not None and not session.closed:
            by_key.setdefault(session.principal.key.key_id, []).append(session)
    closed = 0
    for key_id, sessions in by_key.items():
        record = await gw.keys.get(key_id)
        for session in sessions:
            refusal = (
                ApiError(403, MSG_KEY_DISABLED)
                if record is None
                else key_refusal(record, session.client_ip)
            )
            if refusal is not None and not session.closed:
                session.revoke(refusal)
                closed += 1
    return closed


async def watch_keys(gw: GatewaySurface) -> None:
    """``sweep`` forever (a task of the gateway's lifespan); a failed lookup is logged and
    retried at the next sweep, never fatal."""
    while True:
        await asyncio.sleep(SWEEP_INTERVAL_S)
        try:
            await sweep(gw)
        except Exception:
            log.exception("key revocation sweep failed")
