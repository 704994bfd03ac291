"""The account as its owner describes it: profile, preferences, country, anti-phishing
phrase, and mobile devices' push tokens.

1. ``profile`` reads BitMEX's ``User`` fields from the account (no secret: ``values.Profile``).
2. Preferences are a JSON object of at most ``PREFERENCES_BYTES_MAX`` bytes, merged into the
   stored ones or replacing them (``overwrite``); the audit row names the keys, not values.
3. The country is an ISO 3166 alpha-2 or alpha-3 code (stored upper case; empty clears it);
   the anti-phishing phrase is printable, at most ``ANTI_PHISHING_LENGTH_MAX`` characters,
   and starts every mail to the account.
4. A device's push token is stored by ``services.devices`` and audited without the token.
"""

import json
from typing import Any, Final

from sqlalchemy import func, select, update

from perpetua.services.audit import record
from perpetua.services.devices import CommunicationToken, DeviceRefused, register_device
from perpetua.services.identity.context import ACTOR_USER, Context
from perpetua.services.identity.values import IdentityError, Origin, Profile, bad
from perpetua.store.schema import users, webauthn_credentials

__all__ = [
    "ANTI_PHISHING_LENGTH_MAX",
    "PREFERENCES_BYTES_MAX",
    "add_device",
    "profile",
    "set_preferences",
    "set_profile",
]

PREFERENCES_BYTES_MAX: Final = 8_192
ANTI_PHISHING_LENGTH_MAX: Final = 64
PREFERENCE_KEYS_AUDITED_MAX: Final = 20
COUNTRY_CODE_LENGTHS: Final = (2, 3)


def profile(ctx: Context, user_id: int) -> Profile | None:
    with ctx.engine.connect() as conn:
        row = ctx.user_row(conn, user_id)
        held = conn.execute(
            select(func.count())
            .select_from(webauthn_credentials)
            .where(webauthn_credentials.c.user_id == user_id)
        ).scalar_one()
    if row is None:
        return None
    return Profile(
        row.id,
        row.email,
        row.created_ns,
        row.updated_ns or row.created_ns,
        bool(row.enabled),
        bool(row.email_confirmed),
        row.country,
        json.loads(row.preferences or "{}"),
        row.anti_phishing,
        bool(row.tfa_enabled),
        row.owner_id,
        row.account_name,
        int(held),
    )


def _current(ctx: Context, user_id: int) -> Profile:
    found = profile(ctx, user_id)
    assert found is not None  # the caller's own account, just written
    return found


def set_preferences(
    ctx: Context, user_id: int, preferences: dict[str, Any], overwrite: bool, origin: Origin
) -> Profile:
    """Rule 2."""
    if not isinstance(preferences, dict):
        raise bad("prefs must be a JSON object")
    with ctx.engine.begin() as conn:
        row = ctx.user_row(conn, user_id)
        merged = (
            dict(preferences)
            if overwrite
            else {**json.loads(row.preferences or "{}"), **preferences}
        )
        text = json.dumps(merged, sort_keys=True)
        if len(text.encode()) > PREFERENCES_BYTES_MAX:
            raise bad(f"prefs larger than {PREFERENCES_BYTES_MAX} bytes")
        conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(preferences=text, updated_ns=ctx.clock_ns())
        )
        record(
            conn,
            ctx.clock_ns(),
            user_id,
            ACTOR_USER,
            "preferences_changed",
            origin.ip,
            {"keys": sorted(preferences)[:PREFERENCE_KEYS_AUDITED_MAX]},
        )
    return _current(ctx, user_id)


def set_profile(
    ctx: Context, user_id: int, country: str | None, anti_phishing: str | None, origin: Origin
) -> Profile:
    """Rule 3; ``None`` leaves a field as it is."""
    values: dict[str, Any] = {}
    if country is not None:
        code = country.strip().upper()
        if code and not (len(code) in COUNTRY_CODE_LENGTHS and code.isascii() and code.isalpha()):
            raise bad("Invalid country: an ISO 3166 code such as DE or DEU")
        values["country"] = code
    if anti_phishing is not None:
        phrase = anti_phishing.strip()
        if len(phrase) > ANTI_PHISHING_LENGTH_MAX or not phrase.isprintable():
            raise bad(
                f"Anti-phishing phrase: printable, at most {ANTI_PHISHING_LENGTH_MAX} characters"
            )
        values["anti_phishing"] = phrase
    with ctx.engine.begin() as conn:
        conn.execute(
            update(users).where(users.c.id == user_id).values(updated_ns=ctx.clock_ns(), **values)
        )
        record(
            conn,
            ctx.clock_ns(),
            user_id,
            ACTOR_USER,
            "profile_changed",
            origin.ip,
            {"fields": sorted(values)},
        )
    return _current(ctx, user_id)


def add_device(
    ctx: Context, user_id: int, token: str, channel: str, origin: Origin
) -> list[CommunicationToken]:
    """Rule 4: the account's push tokens after this one."""
    with ctx.engine.begin() as conn:
        if ctx.user_row(conn, user_id) is None:
            raise IdentityError(404, "No such user")
        try:
            held = register_device(conn, user_id, token, channel, ctx.clock_ns())
        except DeviceRefused as refused:
            raise bad(str(refused)) from None
        record(
            conn,
            ctx.clock_ns(),
            user_id,
            ACTOR_USER,
            "device_registered",
            origin.ip,
            {"channel": channel},
        )
    return held
