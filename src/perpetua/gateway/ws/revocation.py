"""Signed-in WebSocket sessions lose their key, or their browser session, as soon as its rules
stop admitting them.

1. A socket signed in with a key that was disabled (or its user), deleted, or no longer allows
   the socket's address is sent an error frame and a close frame within
   ``REVOCATION_DELAY_S_MAX`` of the change, and receives nothing private after that.
   ``sweep`` runs every ``SWEEP_INTERVAL_S``: it looks each distinct key up once through the
   gateway's key cache (whose entries, and the accounts service's, live 0.35 s at most), then
   applies ``auth.key_refusal`` per socket. A key that no longer exists counts as disabled.
2. A socket signed in with the browser session cookie (``authSession``) is closed the same way
   within ``SESSION_REVOCATION_DELAY_S_MAX`` once its session ends: signed out, revoked, idle or
   past its absolute lifetime, or its account locked. ``sweep_sessions`` asks which sessions
   are still live in one query every ``SESSION_SWEEP_INTERVAL_S`` (off the event loop); the
   socket itself does not count as activity (``browser_sessions`` rule 4).
"""

import asyncio
import logging

from perpetua.gateway.auth import key_refusal
from perpetua.gateway.errors import MSG_KEY_DISABLED, ApiError
from perpetua.gateway.sessions import MSG_SESSION_ENDED
from perpetua.gateway.surface import GatewaySurface
from perpetua.gateway.ws.fanout import Session

__all__ = [
    "REVOCATION_DELAY_S_MAX",
    "SESSION_REVOCATION_DELAY_S_MAX",
    "SESSION_SWEEP_INTERVAL_S",
    "SWEEP_INTERVAL_S",
    "sweep",
    "sweep_sessions",
    "watch_keys",
]

log = logging.getLogger("perpetua.gateway.ws")
SWEEP_INTERVAL_S = 0.2
REVOCATION_DELAY_S_MAX = 1.0  # 0.35 s (service cache) + 0.35 s (gateway cache) + 0.2 s
SESSION_SWEEP_INTERVAL_S = 1.0
SESSION_SWEEPS_EVERY = round(SESSION_SWEEP_INTERVAL_S / SWEEP_INTERVAL_S)  # key sweeps per one
SESSION_REVOCATION_DELAY_S_MAX = 2.0  # one interval, plus the query under load


async def sweep(gw: GatewaySurface) -> int:
    """Close every signed-in session its key no longer admits; returns how many."""
    by_key: dict[str, list[Session]] = {}
    for session in list(gw.fanout.sessions):
        principal = session.principal
        if principal is not None and principal.session is None and not session.closed:
            by_key.setdefault(principal.key.key_id, []).append(session)
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


async def sweep_sessions(gw: GatewaySurface) -> int:
    """Close every socket whose browser session has ended (rule 2); returns how many."""
    by_session: dict[str, list[Session]] = {}
    for session in list(gw.fanout.sessions):
        principal = session.principal
        if principal is not None and principal.session is not None and not session.closed:
            by_session.setdefault(principal.session.id, []).append(session)
    if not by_session or gw.identity is None:
        return 0
    live = await gw.identity.sessions_live(list(by_session))
    closed = 0
    for session_id, sockets in by_session.items():
        if session_id in live:
            continue
        for socket in sockets:
            if not socket.closed:
                socket.revoke(ApiError(401, MSG_SESSION_ENDED))
                closed += 1
    return closed


async def watch_keys(gw: GatewaySurface) -> None:
    """``sweep`` forever, and ``sweep_sessions`` every ``SESSION_SWEEPS_EVERY`` sweeps (a task
    of the gateway's lifespan); a failed lookup is logged and retried next time, never fatal."""
    rounds = 0
    while True:
        await asyncio.sleep(SWEEP_INTERVAL_S)
        rounds += 1
        try:
            await sweep(gw)
        except Exception:
            log.exception("key revocation sweep failed")
        if rounds % SESSION_SWEEPS_EVERY:
            continue
        try:
            await sweep_sessions(gw)
        except Exception:
            log.exception("session revocation sweep failed")
