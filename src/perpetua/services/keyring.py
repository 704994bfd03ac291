"""Self-service API keys and sub-accounts: what a signed-in owner may do with them.

1. An owner's family is its main account and the sub-accounts whose ``owner_id`` is it. A
   key, a sub-account change or a wallet transfer touches only accounts of the caller's
   family, and a sub-account never owns sub-accounts.
2. A key with the ``withdraw`` permission is created or re-enabled only with a current
   second factor: a TOTP code (the owner has TOTP on) or a fresh security key assertion over
   the owner's outstanding challenge (``security_keys.confirm_options``); both are single
   use. ASVS level 3 for keys that can move money out; a recovery code does not approve it.
3. Sub-accounts cannot sign in (no address, an unusable password hash); they trade through
   keys their owner makes for them, and money moves between family accounts only by the
   core's ``WalletTransfer`` command (the gateway submits it).
4. Creating a key is one transaction: the key (in the state asked, enabled or not), its audit
   row, and the read of the owner's address for the notice. Nothing after the commit reads
   or writes SQL, so the call either fails with no key made or answers the key with its
   secret (once: it is never answered again); the notice mail goes out after the commit.
   A crash between the commit and the answer reaching the client leaves a whole key whose
   secret nobody saw: the owner sees it (``GET /apiKey``, the audit log, the notice) and
   deletes it (why this is the right end state: docs/accounts.md, "A key's secret").
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from sqlalchemy import Connection, Engine, func, select, update

from perpetua.services.accounts import (
    AccountsError,
    AccountsService,
    ApiKeyInfo,
    key_info,
    next_user_id,
)
from perpetua.services.audit import record
from perpetua.store.schema import api_keys, users

__all__ = [
    "ACCOUNT_NAME_LENGTH_MAX",
    "SUBACCOUNTS_PER_OWNER_MAX",
    "FamilyAccount",
    "Keyring",
]

SUBACCOUNTS_PER_OWNER_MAX: Final = 20
ACCOUNT_NAME_LENGTH_MAX: Final = 64
UNUSABLE_PASSWORD_HASH: Final = "!"  # no argon2 hash: verify always fails
SUBACCOUNT_EMAIL_DOMAIN: Final = "subaccounts.perpetua.invalid"
MSG_WITHDRAW_NEEDS_TFA: Final = (
    "A key with withdraw permission needs a current second factor: a TOTP code (token) or a "
    "security key assertion (webauthn, after POST /user/webauthn/confirmOptions)"
)


@dataclass(frozen=True, slots=True)
class FamilyAccount:
    id: int
    owner_id: int | None
    account_name: str
    created_ns: int


def _name(text: str) -> str:
    name = (text or "").strip()
    if not 1 <= len(name) <= ACCOUNT_NAME_LENGTH_MAX or not name.isprintable():
        raise AccountsError(
            f"Invalid accountName: 1 to {ACCOUNT_NAME_LENGTH_MAX} printable characters"
        )
    return name


class IdentityHost(Protocol):
    """What the keyring uses of ``services.identity.Identity``."""

    engine: Engine
    accounts: Any

    def now_ns(self) -> int: ...

    def second_factor_ok(self, user_id: int, code: str, assertion: str = "") -> bool: ...

    def notice_in(
        self, conn: Connection, user_id: int, subject: str, body: str
    ) -> Callable[[], None]: ...


class Keyring:
    """Rules 1-3 over the identity service's database (sync: callers use a thread)."""

    def __init__(self, identity: IdentityHost) -> None:
        self.identity = identity
        self.engine = identity.engine
        self.accounts: AccountsService = identity.accounts

    # --- family -------------------------------------------------------------------------------

    def family(self, user_id: int) -> list[FamilyAccount]:
        """The caller's main account first, then its sub-accounts by id."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(users.c.id, users.c.owner_id).where(users.c.id == user_id)
            ).first()
            if row is None:
                return []
            owner = row.owner_id or row.id
            rows = conn.execute(
                select(users.c.id, users.c.owner_id, users.c.account_name, users.c.created_ns)
                .where((users.c.id == owner) | (users.c.owner_id == owner))
                .order_by(users.c.owner_id.is_not(None), users.c.id)
            ).all()
        return [FamilyAccount(r.id, r.owner_id, r.account_name, r.created_ns) for r in rows]

    def owns(self, user_id: int, account: int) -> bool:
        """``user_id`` may act for ``account``: itself, or one of its sub-accounts."""
        if account == user_id:
            return True
        return any(a.id == account and a.owner_id == user_id for a in self.family(user_id))

    def add_subaccount(self, owner_id: int, account_name: str, ip: str) -> FamilyAccount:
        name = _name(account_name)
        now = self.identity.now_ns()
        with self.engine.begin() as conn:
            owner = conn.execute(select(users.c.owner_id).where(users.c.id == owner_id)).first()
            if owner is None or owner.owner_id is not None:
                raise AccountsError("Only a main account can have sub-accounts")
            held = conn.execute(
                select(func.count()).select_from(users).where(users.c.owner_id == owner_id)
            ).scalar_one()
            if held >= SUBACCOUNTS_PER_OWNER_MAX:
                raise AccountsError(f"At most {SUBACCOUNTS_PER_OWNER_MAX} sub-accounts")
            new_id = next_user_id(conn)
            conn.execute(
                users.insert().values(
                    id=new_id,
                    email=f"sub-{new_id}@{SUBACCOUNT_EMAIL_DOMAIN}",
                    password_hash=UNUSABLE_PASSWORD_HASH,
                    created_ns=now,
                    enabled=True,
                    email_confirmed=False,
                    owner_id=owner_id,
                    account_name=name,
                    updated_ns=now,
                )
            )
            record(
                conn,
                now,
                owner_id,
                "user",
                "subaccount_created",
                ip,
                {"account": new_id, "name": name},
            )
        return FamilyAccount(new_id, owner_id, name, now)

    def update_subaccount(
        self, owner_id: int, account: int, account_name: str, ip: str
    ) -> FamilyAccount:
        name = _name(account_name)
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(users)
                .where(users.c.id == account, users.c.owner_id == owner_id)
                .values(account_name=name, updated_ns=self.identity.now_ns())
            ).rowcount
            if not changed:
                raise AccountsError("Invalid targetAccountId: not one of your sub-accounts")
            record(
                conn,
                self.identity.now_ns(),
                owner_id,
                "user",
                "subaccount_updated",
                ip,
                {"account": account, "name": name},
            )
            created = conn.execute(
                select(users.c.created_ns).where(users.c.id == account)
            ).scalar_one()
        return FamilyAccount(account, owner_id, name, int(created))

    # --- keys ---------------------------------------------------------------------------------

    def keys(self, user_id: int) -> list[ApiKeyInfo]:
        """The keys of the caller's own account and, for an owner, of its sub-accounts."""
        found: list[ApiKeyInfo] = []
        for account in self.family(user_id):
            if account.id == user_id or account.owner_id == user_id:
                found.extend(self.accounts.list_api_keys(account.id))
        return found

    def create_key(
        self,
        user_id: int,
        account: int,
        name: str,
        permissions: Iterable[str],
        cidr: Iterable[str],
        factor: tuple[str, str],
        ip: str,
        enabled: bool = True,
    ) -> tuple[ApiKeyInfo, str]:
        """A new key of ``account`` and its secret (rules 1, 2, 4); ``factor`` is the TOTP
        code and the security key assertion (either may be empty)."""
        chosen = list(permissions)
        if not self.owns(user_id, account):
            raise AccountsError("Invalid targetAccountId: not your account")
        if "withdraw" in chosen and not self.identity.second_factor_ok(user_id, *factor):
            raise AccountsError(MSG_WITHDRAW_NEEDS_TFA)
        made: list[Any] = []

        def commit_with(conn: Connection, key_id: str) -> None:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one()
            record(
                conn,
                self.identity.now_ns(),
                user_id,
                "user",
                "api_key_created",
                ip,
                {"key": key_id, "account": account, "permissions": list(row.permissions)},
            )
            mail = self.identity.notice_in(
                conn,
                user_id,
                "API key created",
                f"API key {key_id} ({name or 'unnamed'}) was created for account {account} "
                f"with permissions {', '.join(row.permissions) or 'read'} from {ip}.",
            )
            made.extend((key_info(row), mail))

        _key_id, secret = self.accounts.create_api_key(
            account, name, chosen, cidr, also=commit_with, enabled=enabled
        )
        info, mail = made
        mail()
        return info, secret

    def _owned_key(self, conn: Connection, user_id: int, key_id: str) -> Any:
        row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None or not self.owns(user_id, row.user_id):
            raise AccountsError("Invalid apiKeyID")
        return row

    def set_key_enabled(
        self, user_id: int, key_id: str, enabled: bool, factor: tuple[str, str], ip: str
    ) -> ApiKeyInfo:
        with self.engine.connect() as conn:
            row = self._owned_key(conn, user_id, key_id)
        if (
            enabled
            and "withdraw" in row.permissions
            and not self.identity.second_factor_ok(user_id, *factor)
        ):
            raise AccountsError(MSG_WITHDRAW_NEEDS_TFA)
        action = "api_key_enabled" if enabled else "api_key_disabled"
        self.accounts.set_api_key_enabled(
            key_id, enabled, also=self._audit(user_id, action, key_id, ip)
        )
        return next(k for k in self.accounts.list_api_keys(row.user_id) if k.key_id == key_id)

    def delete_key(self, user_id: int, key_id: str, ip: str) -> ApiKeyInfo:
        with self.engine.connect() as conn:
            info = key_info(self._owned_key(conn, user_id, key_id))
        self.accounts.delete_api_key(
            key_id, also=self._audit(user_id, "api_key_deleted", key_id, ip)
        )
        return info

    def _audit(
        self, user_id: int, action: str, key_id: str, ip: str
    ) -> Callable[[Connection], None]:
        def audit(conn: Connection) -> None:
            record(conn, self.identity.now_ns(), user_id, "user", action, ip, {"key": key_id})

        return audit
