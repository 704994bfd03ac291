"""Mobile clients' communication tokens (BitMEX ``POST /user/communicationToken``).

1. A user registers a device's push token with the platform it came from (``platformAgent``,
   kept as the ``channel``); registering the same token again changes nothing but its channel.
2. At most ``DEVICES_PER_USER_MAX`` tokens per user: a new one past that replaces the oldest.
3. A token is opaque text of at most ``DEVICE_TOKEN_LENGTH_MAX`` characters (printable ASCII,
   no spaces); a channel at most ``CHANNEL_LENGTH_MAX``. Anything else is refused, unchanged.
4. The venue sends no push messages itself: an operator's notifier reads the table.
"""

import secrets
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, delete, select, update

from perpetua.store.schema import communication_tokens

__all__ = [
    "CHANNEL_LENGTH_MAX",
    "DEVICES_PER_USER_MAX",
    "DEVICE_TOKEN_LENGTH_MAX",
    "CommunicationToken",
    "DeviceRefused",
    "register_device",
]

DEVICES_PER_USER_MAX: Final = 10
DEVICE_TOKEN_LENGTH_MAX: Final = 512
CHANNEL_LENGTH_MAX: Final = 32


class DeviceRefused(ValueError):
    """The token or channel breaks rule 3; the message is for the client."""


@dataclass(frozen=True, slots=True)
class CommunicationToken:
    id: str
    user_id: int
    device_token: str
    channel: str


def _printable(text: str) -> bool:
    return all(33 <= ord(c) < 127 for c in text)


def register_device(
    conn: Connection, user_id: int, token: str, channel: str, now_ns: int
) -> list[CommunicationToken]:
    """Register ``token`` for ``user_id`` in the caller's transaction (rules 1-3); the user's
    tokens after it, oldest first."""
    if not token or len(token) > DEVICE_TOKEN_LENGTH_MAX or not _printable(token):
        raise DeviceRefused(
            f"Invalid token: 1 to {DEVICE_TOKEN_LENGTH_MAX} printable characters, no spaces"
        )
    if not channel or len(channel) > CHANNEL_LENGTH_MAX or not _printable(channel):
        raise DeviceRefused(f"Invalid platformAgent: 1 to {CHANNEL_LENGTH_MAX} characters")
    table = communication_tokens
    held = conn.execute(
        select(table.c.id, table.c.device_token, table.c.created_ns)
        .where(table.c.user_id == user_id)
        .order_by(table.c.created_ns, table.c.id)
    ).all()
    same = [row.id for row in held if row.device_token == token]
    if same:
        conn.execute(update(table).where(table.c.id == same[0]).values(channel=channel))
    else:
        surplus = len(held) + 1 - DEVICES_PER_USER_MAX
        if surplus > 0:
            conn.execute(delete(table).where(table.c.id.in_([r.id for r in held[:surplus]])))
        conn.execute(
            table.insert().values(
                id=secrets.token_hex(12),
                user_id=user_id,
                device_token=token,
                channel=channel,
                # strictly after the user's newest, so "oldest" is exact under a coarse clock
                created_ns=max([now_ns, *(row.created_ns + 1 for row in held)]),
            )
        )
    rows = conn.execute(
        select(table).where(table.c.user_id == user_id).order_by(table.c.created_ns, table.c.id)
    ).all()
    return [CommunicationToken(r.id, r.user_id, r.device_token, r.channel) for r in rows]
