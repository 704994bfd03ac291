"""Compliance: KYC levels and review, jurisdiction and sanctions screening, and the account
restrictions they imply (docs/compliance.md).

Invariants:

1. What an account may do is decided in the core (``core.restrictions``); this service only
   *submits* ``SetAccountRestriction`` when the restriction its records imply (``desired``)
   differs from the one it last submitted (``kyc_applied``), for the user and every
   sub-account. The sync runs after every decision and as a periodic job (``sync_all``), which
   is also the periodic review: an approved level whose review date has come, or the newest
   copy of one of whose required documents has expired, drops the account to close-only
   (cause ``KycReviewOverdue``), makes the review due from then on and opens a ``periodic``
   case; it stays close-only until a reviewer approves (on documents still valid: approving
   over expired ones is 409), which sets the next review date.
1a. An operator's own restriction (``/admin/restriction``, ``operator_restriction``) is kept
   per account (``kyc_applied.operator``) and every submission merges it with what the records
   imply (``merge``: the stricter trading mode, every denied class, a permission only if both
   give it), so no sync ever lifts or weakens it; the operator lifts it by setting the account
   ``Allowed``, which leaves what compliance requires.
2. Every review decision is a row in the append-only ``kyc_decisions`` (who, when, why);
   nothing updates or deletes a decision except erasure, which removes its personal
   ``detail`` and keeps the decision.
3. Four-eyes: a high-risk case (business accounts, level 2, any sanctions or location case,
   any potential sanctions hit) is approved (or cleared) only by two different reviewers;
   the first approval leaves it ``awaiting_second``.
4. A decided case is never decided again (409). A request that fails stores nothing
   (one transaction per request; documents are checked before anything is written).
5. Personal fields other than the place codes the policy needs are stored sealed (Fernet JSON
   under the server key); documents are sealed per file (``services.documents``).

Levels (``LevelRule``, configurable): 0 registered (market data only: no trading, deposits or
withdrawals when ``kyc_required``), 1 verified (trade, deposit, withdraw up to a daily limit
per currency), 2 enhanced (higher limits, after proof of address and source of funds).
"""

import asyncio
import base64
import binascii
import functools
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from cryptography.fernet import MultiFernet
from sqlalchemy import Connection, Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from perpetua.core.commands import Command, SetAccountRestriction
from perpetua.core.enums import RestrictionCause, TradingMode
from perpetua.core.events import Rejected
from perpetua.sequencer import Result
from perpetua.services import documents
from perpetua.services.jurisdictions import (
    DEFAULT,
    GeoIp,
    Location,
    Policy,
    PolicyError,
    parse_place,
)
from perpetua.services.kyc_providers import (
    FINDING_CHARS_MAX,
    OUTCOMES,
    Document,
    IdentityProvider,
    ManualReview,
)
from perpetua.services.sanctions import Hit, SanctionsList, load_list
from perpetua.services.wallets.policy import PolicyVerdict
from perpetua.store.schema import (
    kyc_applied,
    kyc_cases,
    kyc_decisions,
    kyc_documents,
    kyc_profiles,
    users,
)

__all__ = [
    "DEFAULT_LEVELS",
    "AccessGate",
    "AddressScreen",
    "Compliance",
    "CompliancePolicy",
    "ComplianceConfig",
    "ComplianceError",
    "CompliancePort",
    "KycLevels",
    "LevelRule",
    "ListSource",
]

log = logging.getLogger("perpetua.compliance")

DAY_NS: Final = 86_400 * 1_000_000_000
NAME_CHARS_MAX: Final = 200
TEXT_CHARS_MAX: Final = 2_000
OWNERS_MAX: Final = 20
REVIEWER_CHARS_MAX: Final = 64
REASON_CHARS_MAX: Final = 1_000
QUEUE_ROWS_MAX: Final = 500
FLOW_WORKERS_MAX: Final = 2
DECISIONS: Final = ("approve", "reject", "more", "confirm", "clear")
OPEN_STATUSES: Final = ("open", "awaiting_second")
REQUIRED_DOCUMENTS: Final[Mapping[int, tuple[str, ...]]] = {
    1: ("id_front", "id_back", "selfie"),
    2: ("id_front", "id_back", "selfie", "proof_of_address", "source_of_funds"),
}
BUSINESS_DOCUMENTS: Final = ("incorporation",)


class ComplianceError(Exception):
    """A refusal the client sees: HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class LevelRule:
    trade: bool
    deposit: bool
    withdraw: bool
    daily_withdrawal: Mapping[str, int]  # currency -> minor units per UTC day


DEFAULT_LEVELS: Final[Mapping[int, LevelRule]] = {
    0: LevelRule(False, False, False, {}),
    1: LevelRule(
        True,
        True,
        True,
        {"XBt": 2 * 10**8, "USDt": 100_000 * 10**6, "Gwei": 50 * 10**9, "BMEx": 10**6 * 10**6},
    ),
    2: LevelRule(
        True,
        True,
        True,
        {
            "XBt": 100 * 10**8,
            "USDt": 5_000_000 * 10**6,
            "Gwei": 2_500 * 10**9,
            "BMEx": 10**8 * 10**6,
        },
    ),
}


@dataclass(frozen=True, slots=True)
class ListSource:
    path: Path
    format: str  # sanctions.LIST_FORMATS


@dataclass(frozen=True, slots=True)
class ComplianceConfig:
    kyc_required: bool = False  # level 0 may not trade (true for a real venue; the demo trades)
    levels: Mapping[int, LevelRule] = field(default_factory=lambda: dict(DEFAULT_LEVELS))
    policy: Policy = DEFAULT
    geoip_database: Path | None = None
    sanctions_lists: tuple[ListSource, ...] = ()
    name_match_threshold: int = 88
    document_validity_days: int = 365 * 2
    review_interval_days: int = 365
    sync_interval_s: float = 60.0
    provider: IdentityProvider = field(default_factory=ManualReview)  # services.kyc_providers


class KycLevels(Protocol):
    """For other services (wallets, buy routes): an account's KYC level and daily limit."""

    async def kyc_level(self, account: int) -> int: ...

    async def daily_withdrawal_limit(self, account: int, currency: str) -> int: ...


class AddressScreen(Protocol):
    """For the wallets: screen a withdrawal address; a hit opens a sanctions case."""

    async def screen_withdrawal_address(
        self, account: int, address: str
    ) -> list[dict[str, object]]: ...


class AccessGate(Protocol):
    """For the gateway: refuse a request from a restricted location (``ComplianceError``)."""

    async def check_access(self, ip: str, account: int | None, action: str) -> None: ...


class Submitter(Protocol):
    async def submit_async(self, command: Command) -> Result: ...


class CompliancePort(KycLevels, AddressScreen, AccessGate, Protocol):
    """Everything the gateway's compliance routes use."""

    async def status(self, user_id: int) -> dict[str, Any]: ...
    async def save_application(self, user_id: int, data: Mapping[str, Any]) -> dict[str, Any]: ...
    async def upload_document(
        self, user_id: int, kind: str, data: bytes, content_type: str, file_name: str
    ) -> dict[str, Any]: ...
    async def submit(self, user_id: int) -> dict[str, Any]: ...
    async def queue(self) -> list[dict[str, Any]]: ...
    async def case(self, case_id: int) -> dict[str, Any]: ...
    async def document(self, doc_id: str) -> dict[str, Any]: ...
    async def decide(
        self, case_id: int, reviewer: str, decision: str, reason: str
    ) -> dict[str, Any]: ...
    async def decisions(self, user_id: int) -> list[dict[str, Any]]: ...
    async def export(self, user_id: int) -> dict[str, Any]: ...
    async def erase(self, user_id: int, reviewer: str) -> dict[str, Any]: ...
    async def reload_lists(self) -> dict[str, Any]: ...
    async def operator_restriction(self, command: SetAccountRestriction) -> Result: ...


Restriction = tuple[int, int, bool, bool, int]  # trading, denied bits, deposits, withdrawals, cause


def merge(operator: Restriction | None, required: Restriction | None) -> Restriction | None:
    """The restriction the core gets from the operator's and compliance's (rule 1a): the
    stricter trading mode, the union of denied classes, a permission only if both give it; the
    cause is that of the stricter trading mode (compliance's when they are equal)."""
    if operator is None or required is None:
        return required if operator is None else operator
    cause = required[4] if required[0] >= operator[0] else operator[4]
    return (
        max(operator[0], required[0]),
        operator[1] | required[1],
        operator[2] and required[2],
        operator[3] and required[3],
        cause,
    )


def _key(restriction: Restriction | None) -> str:
    return "" if restriction is None else _json([int(v) for v in restriction])


def _unkey(key: str) -> Restriction | None:
    if not key:
        return None
    trading, denied, deposits, withdrawals, cause = json.loads(key)
    return (int(trading), int(denied), bool(deposits), bool(withdrawals), int(cause))


def _restriction_of(command: SetAccountRestriction) -> Restriction | None:
    values = (
        int(command.trading),
        int(command.products_denied),
        bool(command.deposits),
        bool(command.withdrawals),
        int(command.cause),
    )
    return None if values[:4] == (TradingMode.ALLOWED, 0, True, True) else values


def _command(account: int, restriction: Restriction | None, text: str) -> SetAccountRestriction:
    if restriction is None:
        return SetAccountRestriction(0, account, TradingMode.ALLOWED, text=text)
    trading, denied, deposits, withdrawals, cause = restriction
    return SetAccountRestriction(0, account, trading, denied, deposits, withdrawals, cause, text)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _text(
    data: Mapping[str, Any], name: str, limit: int = NAME_CHARS_MAX, required: bool = True
) -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > limit or not value.isprintable():
        raise ComplianceError(400, f"Invalid {name}")
    value = value.strip()
    if required and not value:
        raise ComplianceError(400, f"'{name}' is required")
    return value


def _date(data: Mapping[str, Any], name: str, required: bool = True) -> str:
    value = _text(data, name, 10, required)
    if value and (
        len(value) != 10
        or value[4] != "-"
        or value[7] != "-"
        or not value.replace("-", "").isdigit()
    ):
        raise ComplianceError(400, f"Invalid {name}: YYYY-MM-DD")
    return value


def _place(data: Mapping[str, Any], name: str) -> Location:
    text = _text(data, name, 8)
    try:
        return parse_place(text)
    except PolicyError as error:
        raise ComplianceError(400, f"Invalid {name}: {error}") from None


def _countries(data: Mapping[str, Any], name: str) -> list[str]:
    value = data.get(name)
    items = value if isinstance(value, list) else [value] if isinstance(value, str) else None
    if not items or len(items) > 5:
        raise ComplianceError(400, f"'{name}' is required: one to five ISO 3166 country codes")
    codes = []
    for item in items:
        if not isinstance(item, str):
            raise ComplianceError(400, f"Invalid {name}")
        try:
            place = parse_place(item)
        except PolicyError as error:
            raise ComplianceError(400, f"Invalid {name}: {error}") from None
        codes.append(place.country)
    return codes


class Compliance:
    """``CompliancePort`` over SQL (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        server_key: MultiFernet,
        submitter: Submitter | None,
        config: ComplianceConfig = ComplianceConfig(),
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.engine = engine
        self.config = config
        self._fernet = server_key
        self.submitter = submitter
        self._clock_ns = clock_ns
        self.geoip = GeoIp(config.geoip_database)
        self.sanctions = SanctionsList((), config.name_match_threshold)
        self._list_stamp: tuple[tuple[str, float, int], ...] = ()
        self._pool = ThreadPoolExecutor(FLOW_WORKERS_MAX, "perpetua-compliance")
        if config.sanctions_lists:
            self._load_lists()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.geoip.close()

    async def _run(self, flow: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(flow, *args))

    # --- records -------------------------------------------------------------------------------

    def _seal(self, data: Mapping[str, Any]) -> str:
        return self._fernet.encrypt(_json(data).encode()).decode()

    def _unseal(self, sealed: str | None) -> dict[str, Any]:
        if not sealed:
            return {}
        value: dict[str, Any] = json.loads(self._fernet.decrypt(sealed.encode()))
        return value

    @staticmethod
    def _main_user(conn: Connection, account: int) -> int:
        row = conn.execute(
            select(users.c.id, users.c.owner_id).where(users.c.id == account)
        ).first()
        if row is None:
            return account
        return int(row.owner_id) if row.owner_id else int(row.id)

    @staticmethod
    def _family(conn: Connection, user_id: int) -> list[int]:
        rows = conn.execute(
            select(users.c.id).where(or_(users.c.id == user_id, users.c.owner_id == user_id))
        ).all()
        return sorted({user_id, *(int(r.id) for r in rows)})

    @staticmethod
    def _profile(conn: Connection, user_id: int) -> Any:
        return conn.execute(select(kyc_profiles).where(kyc_profiles.c.user_id == user_id)).first()

    def _record(
        self,
        conn: Connection,
        case_id: int,
        user_id: int,
        reviewer: str,
        decision: str,
        reason: str,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        conn.execute(
            insert(kyc_decisions).values(
                case_id=case_id,
                user_id=user_id,
                reviewer=reviewer,
                decision=decision,
                reason=reason,
                detail=_json(detail) if detail else None,
                ts_ns=self._clock_ns(),
            )
        )

    def _open_case(
        self,
        conn: Connection,
        user_id: int,
        kind: str,
        risk: str,
        target_level: int,
        detail: Mapping[str, Any],
    ) -> int:
        now = self._clock_ns()
        result = conn.execute(
            insert(kyc_cases).values(
                user_id=user_id,
                kind=kind,
                status="open",
                risk=risk,
                target_level=target_level,
                first_reviewer="",
                detail=_json(detail),
                opened_ns=now,
                updated_ns=now,
            )
        )
        key = result.inserted_primary_key
        if key is None:
            raise RuntimeError("an inserted case has no id")
        case_id = int(key[0])
        self._record(conn, case_id, user_id, "system", "opened", f"{kind} case opened", detail)
        return case_id

    # --- levels (KycLevels) ------------------------------------------------------------------

    def _level_of(self, account: int) -> int:
        with self.engine.connect() as conn:
            row = self._profile(conn, self._main_user(conn, account))
        return int(row.level) if row is not None else 0

    async def kyc_level(self, account: int) -> int:
        return int(await self._run(self._level_of, account))

    async def daily_withdrawal_limit(self, account: int, currency: str) -> int:
        level = await self.kyc_level(account)
        rule = self.config.levels.get(level)
        if rule is None or not rule.withdraw:
            return 0
        return int(rule.daily_withdrawal.get(currency, 0))

    # --- access (AccessGate) -----------------------------------------------------------------

    async def check_access(self, ip: str, account: int | None, action: str) -> None:
        """Refuse a request from a restricted IP location (sign-up, sign-in, order,
        withdrawal); flag a residence/IP mismatch for review (not refused)."""
        where = self.geoip.locate(ip)
        if where is None:
            return
        if self.config.policy.blocks("ip", where):
            raise ComplianceError(
                403, f"Access from {where} is not permitted (restricted location; {action})"
            )
        if account is not None:
            await self._run(self._flag_mismatch, account, where, ip)

    def _flag_mismatch(self, account: int, where: Location, ip: str) -> None:
        with self.engine.begin() as conn:
            user_id = self._main_user(conn, account)
            row = self._profile(conn, user_id)
            if row is None or not row.residence:
                return
            residence = parse_place(row.residence)
            if residence.country == where.country:
                return
            key = f"{residence.country}->{where.country}"
            for case in conn.execute(
                select(kyc_cases.c.detail).where(
                    kyc_cases.c.user_id == user_id, kyc_cases.c.kind == "location"
                )
            ):
                if case.detail and json.loads(case.detail).get("mismatch") == key:
                    return  # flagged once per residence/location pair
            self._open_case(
                conn, user_id, "location", "high", int(row.level),
                {"mismatch": key, "ip": ip, "location": str(where)},
            )  # fmt: skip

    # --- applicant flow ------------------------------------------------------------------------

    async def status(self, user_id: int) -> dict[str, Any]:
        return dict(await self._run(self._status, user_id))

    def _status(self, user_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = self._profile(conn, user_id)
            docs = conn.execute(
                select(kyc_documents.c.id, kyc_documents.c.kind, kyc_documents.c.expires_ns).where(
                    kyc_documents.c.user_id == user_id
                )
            ).all()
            cases = conn.execute(
                select(kyc_cases.c.id, kyc_cases.c.kind, kyc_cases.c.status).where(
                    kyc_cases.c.user_id == user_id
                )
            ).all()
        level = int(row.level) if row is not None else 0
        requested = int(row.requested_level) if row is not None else 1
        needed = self._required(requested, row.kind if row is not None else "individual")
        have = {d.kind for d in docs}
        newest: dict[str, int] = {}
        for d in docs:
            newest[d.kind] = max(newest.get(d.kind, 0), int(d.expires_ns))
        now = self._clock_ns()
        rule = self.config.levels.get(level, DEFAULT_LEVELS[0])
        return {
            "level": level,
            "status": row.status if row is not None else "none",
            "kind": row.kind if row is not None else "individual",
            "requestedLevel": requested,
            "documents": [{"id": d.id, "kind": d.kind} for d in docs],
            "missingDocuments": [k for k in needed if k not in have],
            "expiredDocuments": [k for k in needed if k in newest and newest[k] < now],
            "reviewDue": row.review_due_ns if row is not None and row.review_due_ns else None,
            "cases": [{"id": c.id, "kind": c.kind, "status": c.status} for c in cases],
            "allowances": {
                "trade": rule.trade,
                "deposit": rule.deposit,
                "withdraw": rule.withdraw,
                "dailyWithdrawalLimit": dict(rule.daily_withdrawal),
            },
        }

    @staticmethod
    def _required(level: int, kind: str) -> tuple[str, ...]:
        needed = REQUIRED_DOCUMENTS.get(level, REQUIRED_DOCUMENTS[1])
        return needed + BUSINESS_DOCUMENTS if kind == "business" else needed

    async def save_application(self, user_id: int, data: Mapping[str, Any]) -> dict[str, Any]:
        application = self._application(data)  # checked before any I/O
        return dict(await self._run(self._save_application, user_id, application))

    def _application(self, data: Mapping[str, Any]) -> dict[str, Any]:
        kind = _text(data, "kind", 16, False) or "individual"
        if kind not in ("individual", "business"):
            raise ComplianceError(400, "Invalid kind: individual or business")
        level = data.get("level", 1)
        if level not in (1, 2) or isinstance(level, bool):
            raise ComplianceError(400, "Invalid level: 1 or 2")
        residence = _place(data, "residence")
        application: dict[str, Any] = {
            "kind": kind,
            "level": level,
            "name": _text(data, "name"),
            "dateOfBirth": _date(data, "dateOfBirth"),
            "residence": str(residence),
            "citizenship": _countries(data, "citizenship"),
            "address": _text(data, "address", TEXT_CHARS_MAX, False),
            "occupation": _text(data, "occupation", NAME_CHARS_MAX, False),
            "sourceOfFunds": _text(data, "sourceOfFunds", TEXT_CHARS_MAX, level == 2),
            "politicallyExposed": bool(data.get("politicallyExposed", False)),
        }
        if kind == "business":
            application["entityName"] = _text(data, "entityName")
            application["incorporation"] = str(_place(data, "incorporationCountry"))
            application["registrationNumber"] = _text(data, "registrationNumber", 64)
            owners = data.get("beneficialOwners")
            if not isinstance(owners, list) or not 1 <= len(owners) <= OWNERS_MAX:
                raise ComplianceError(400, f"'beneficialOwners': 1 to {OWNERS_MAX} owners")
            checked = []
            for owner in owners:
                if not isinstance(owner, dict):
                    raise ComplianceError(400, "Invalid beneficialOwners")
                checked.append(
                    {
                        "name": _text(owner, "name"),
                        "dateOfBirth": _date(owner, "dateOfBirth", False),
                        "nationality": _countries(owner, "nationality"),
                    }
                )
            application["beneficialOwners"] = checked
        self._check_jurisdictions(application)
        return application

    def _check_jurisdictions(self, application: Mapping[str, Any]) -> None:
        policy = self.config.policy
        residence = parse_place(application["residence"])
        if policy.blocks("residence", residence):
            raise ComplianceError(403, f"Residents of {residence} may not use this exchange")
        people = [application["citizenship"]] + [
            o["nationality"] for o in application.get("beneficialOwners", [])
        ]
        for nationalities in people:
            for code in nationalities:
                if policy.blocks("citizenship", Location(code)):
                    raise ComplianceError(403, f"Citizens of {code} may not use this exchange")
        if application["kind"] == "business":
            place = parse_place(application["incorporation"])
            if policy.blocks("incorporation", place):
                raise ComplianceError(
                    403, f"Entities incorporated in {place} may not use this exchange"
                )

    def _screen_application(self, application: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Hits for everyone the application names: the applicant, and for a business the
        entity and each beneficial owner; each hit says whom it matched (``subject``:
        ``applicant``, ``entity`` or ``beneficialOwners[i]``, no personal field)."""
        people = [
            ("applicant", application["name"], application["dateOfBirth"],
             application["citizenship"]),
        ]  # fmt: skip
        people += [
            (f"beneficialOwners[{i}]", o["name"], o["dateOfBirth"], o["nationality"])
            for i, o in enumerate(application.get("beneficialOwners", []))
        ]
        hits: list[tuple[str, Hit]] = []
        for subject, name, dob, nationalities in people:
            hits.extend(
                (subject, h) for h in self.sanctions.screen_person(name, dob, nationalities)
            )
        if application["kind"] == "business":
            entity = self.sanctions.screen_person(application["entityName"])
            hits.extend(("entity", h) for h in entity)
        return [{**h.as_dict(), "subject": subject} for subject, h in hits]

    def _save_application(self, user_id: int, application: dict[str, Any]) -> dict[str, Any]:
        now = self._clock_ns()
        hits = self._screen_application(application)
        with self.engine.begin() as conn:
            row = self._profile(conn, user_id)
            if row is not None and row.status == "pending":
                raise ComplianceError(409, "An application is under review")
            if row is not None and row.sanctioned:
                raise ComplianceError(403, "Account frozen: sanctions screening")
            values = {
                "kind": application["kind"],
                "requested_level": application["level"],
                "status": "draft" if row is None or row.status != "approved" else "approved",
                "residence": application["residence"],
                "citizenship": ",".join(application["citizenship"]),
                "incorporation": application.get("incorporation", ""),
                "risk": "normal",
                "sealed": self._seal(application),
                "updated_ns": now,
            }
            if row is None:
                conn.execute(
                    insert(kyc_profiles).values(
                        user_id=user_id,
                        level=0,
                        sanctioned=False,
                        approved_ns=0,
                        review_due_ns=0,
                        **values,
                    )
                )
            else:
                conn.execute(
                    update(kyc_profiles).where(kyc_profiles.c.user_id == user_id).values(**values)
                )
            if hits:
                self._open_case(
                    conn, user_id, "sanctions", "high", 0, {"hits": hits, "at": "application"}
                )
        return {"saved": True, "screening": "review" if hits else "clear"}

    async def upload_document(
        self, user_id: int, kind: str, data: bytes, content_type: str, file_name: str
    ) -> dict[str, Any]:
        try:
            clean, actual, label = await self._run(
                documents.prepare, kind, data, content_type, file_name
            )
        except documents.DocumentError as error:
            raise ComplianceError(error.status, error.message) from None
        return dict(await self._run(self._store_document, user_id, kind, clean, actual, label))

    def _store_document(
        self, user_id: int, kind: str, data: bytes, content_type: str, label: str
    ) -> dict[str, Any]:
        sealed = documents.seal(data, self._fernet)
        now = self._clock_ns()
        try:
            with self.engine.begin() as conn:
                row = self._profile(conn, user_id)
                if row is None:
                    raise ComplianceError(409, "Save the application questionnaire first")
                if row.status == "pending":
                    raise ComplianceError(409, "An application is under review")
                conn.execute(
                    insert(kyc_documents).values(
                        id=sealed.doc_id,
                        user_id=user_id,
                        kind=kind,
                        content_type=content_type,
                        size=len(data),
                        sha256=sealed.sha256,
                        label=label,
                        ciphertext=sealed.ciphertext,
                        wrapped_key=sealed.wrapped_key,
                        created_ns=now,
                        expires_ns=now + self.config.document_validity_days * DAY_NS,
                    )
                )
        except IntegrityError:
            raise ComplianceError(409, "This document was already uploaded") from None
        return {"id": sealed.doc_id, "kind": kind, "contentType": content_type, "size": len(data)}

    async def submit(self, user_id: int) -> dict[str, Any]:
        submitted = dict(await self._run(self._submit, user_id))
        await self._run(self._consult, int(submitted["caseId"]), user_id)
        return submitted

    def _consult(self, case_id: int, user_id: int) -> None:
        """The identity provider's finding on a submitted case, recorded as advice in its
        audit trail (services.kyc_providers rules 2 and 4); the case stays for reviewers."""
        provider = self.config.provider
        with self.engine.connect() as conn:
            profile = self._profile(conn, user_id)
            rows = conn.execute(
                select(kyc_documents).where(kyc_documents.c.user_id == user_id)
            ).all()
        application = self._unseal(profile.sealed) if profile is not None else {}
        papers = [
            Document(
                r.kind,
                r.content_type,
                documents.open_document(r.id, r.ciphertext, r.wrapped_key, self._fernet),
            )
            for r in rows
        ]
        try:
            finding = provider.check(case_id, application, papers)
        except Exception:
            log.exception("identity provider %s failed on case %d", provider.name, case_id)
            return
        if finding is None:
            return
        outcome = finding.outcome if finding.outcome in OUTCOMES else "inconclusive"
        with self.engine.begin() as conn:
            self._record(
                conn, case_id, user_id, f"provider:{provider.name}"[:REVIEWER_CHARS_MAX],
                f"finding_{outcome}", finding.reason[:FINDING_CHARS_MAX] or outcome,
                {"reference": finding.reference[:NAME_CHARS_MAX]},
            )  # fmt: skip

    def _submit(self, user_id: int) -> dict[str, Any]:
        with self.engine.begin() as conn:
            row = self._profile(conn, user_id)
            if row is None:
                raise ComplianceError(409, "Save the application questionnaire first")
            if row.sanctioned:
                raise ComplianceError(403, "Account frozen: sanctions screening")
            open_case = conn.execute(
                select(kyc_cases.c.id).where(
                    kyc_cases.c.user_id == user_id,
                    kyc_cases.c.kind == "kyc",
                    kyc_cases.c.status.in_(OPEN_STATUSES),
                )
            ).first()
            if open_case is not None or row.status == "pending":
                raise ComplianceError(409, "An application is already under review")
            kinds = {
                d.kind
                for d in conn.execute(
                    select(kyc_documents.c.kind).where(kyc_documents.c.user_id == user_id)
                )
            }
            missing = [k for k in self._required(row.requested_level, row.kind) if k not in kinds]
            if missing:
                raise ComplianceError(400, f"Missing documents: {', '.join(missing)}")
            application = self._unseal(row.sealed)
            sanctions_open = conn.execute(
                select(kyc_cases.c.id).where(
                    kyc_cases.c.user_id == user_id,
                    kyc_cases.c.kind == "sanctions",
                    kyc_cases.c.status.in_(OPEN_STATUSES),
                )
            ).first()
            high = (
                row.kind == "business"
                or row.requested_level >= 2
                or bool(application.get("politicallyExposed"))
                or sanctions_open is not None
            )
            risk = "high" if high else "normal"
            case_id = self._open_case(
                conn, user_id, "kyc", risk, int(row.requested_level),
                {"level": int(row.requested_level), "kind": row.kind},
            )  # fmt: skip
            conn.execute(
                update(kyc_profiles)
                .where(kyc_profiles.c.user_id == user_id)
                .values(status="pending", risk=risk, updated_ns=self._clock_ns())
            )
        return {"caseId": case_id, "status": "pending", "risk": risk}

    # --- review ------------------------------------------------------------------------------

    async def queue(self) -> list[dict[str, Any]]:
        return list(await self._run(self._queue))

    def _queue(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(kyc_cases)
                .where(kyc_cases.c.status.in_(OPEN_STATUSES))
                .order_by(kyc_cases.c.id)
                .limit(QUEUE_ROWS_MAX)
            ).all()
        return [self._case_row(r) for r in rows]

    @staticmethod
    def _case_row(row: Any) -> dict[str, Any]:
        return {
            "id": row.id,
            "account": row.user_id,
            "kind": row.kind,
            "status": row.status,
            "risk": row.risk,
            "targetLevel": row.target_level,
            "firstReviewer": row.first_reviewer or None,
            "opened": row.opened_ns,
            "detail": json.loads(row.detail) if row.detail else None,
        }

    async def case(self, case_id: int) -> dict[str, Any]:
        return dict(await self._run(self._case, case_id))

    def _case(self, case_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(kyc_cases).where(kyc_cases.c.id == case_id)).first()
            if row is None:
                raise ComplianceError(404, "Case not found")
            profile = self._profile(conn, row.user_id)
            docs = conn.execute(
                select(
                    kyc_documents.c.id,
                    kyc_documents.c.kind,
                    kyc_documents.c.content_type,
                    kyc_documents.c.size,
                    kyc_documents.c.label,
                    kyc_documents.c.expires_ns,
                ).where(kyc_documents.c.user_id == row.user_id)
            ).all()
        answer = self._case_row(row)
        answer["application"] = self._unseal(profile.sealed) if profile is not None else None
        answer["documents"] = [
            {"id": d.id, "kind": d.kind, "contentType": d.content_type, "size": d.size,
             "fileName": d.label, "expires": d.expires_ns}
            for d in docs
        ]  # fmt: skip
        return answer

    async def document(self, doc_id: str) -> dict[str, Any]:
        return dict(await self._run(self._document, doc_id))

    def _document(self, doc_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(kyc_documents).where(kyc_documents.c.id == doc_id)).first()
        if row is None:
            raise ComplianceError(404, "Document not found")
        data = documents.open_document(row.id, row.ciphertext, row.wrapped_key, self._fernet)
        return {
            "id": row.id,
            "account": row.user_id,
            "kind": row.kind,
            "contentType": row.content_type,
            "data": base64.b64encode(data).decode(),
        }

    async def decide(
        self, case_id: int, reviewer: str, decision: str, reason: str
    ) -> dict[str, Any]:
        who = reviewer.strip()
        if not who or len(who) > REVIEWER_CHARS_MAX or not who.isprintable():
            raise ComplianceError(400, "'reviewer' is required: who decides")
        if decision not in DECISIONS:
            raise ComplianceError(400, f"decision must be one of {', '.join(DECISIONS)}")
        why = reason.strip()
        if len(why) > REASON_CHARS_MAX:
            raise ComplianceError(400, "reason is too long")
        if decision in ("reject", "more", "confirm") and not why:
            raise ComplianceError(400, f"A {decision} decision needs a reason")
        answer, user_id = await self._run(self._decide, case_id, who, decision, why)
        await self.sync_user(user_id)
        return dict(answer)

    def _decide(
        self, case_id: int, reviewer: str, decision: str, reason: str
    ) -> tuple[dict[str, Any], int]:
        now = self._clock_ns()
        with self.engine.begin() as conn:
            row = conn.execute(select(kyc_cases).where(kyc_cases.c.id == case_id)).first()
            if row is None:
                raise ComplianceError(404, "Case not found")
            if row.status not in OPEN_STATUSES:
                raise ComplianceError(409, f"Case {case_id} is already decided ({row.status})")
            allowed = (
                ("approve", "reject", "more")
                if row.kind in ("kyc", "periodic")
                else ("confirm", "clear")
            )
            if decision not in allowed:
                raise ComplianceError(400, f"A {row.kind} case takes {', '.join(allowed)}")
            if decision == "approve":
                self._approvable(conn, row, now)
            permissive = decision in ("approve", "clear")
            status = {
                "approve": "approved",
                "reject": "rejected",
                "more": "more_info",
                "confirm": "confirmed",
                "clear": "cleared",
            }[decision]
            first = row.first_reviewer
            if permissive and row.risk == "high":
                if not first:
                    conn.execute(
                        update(kyc_cases)
                        .where(kyc_cases.c.id == case_id)
                        .values(status="awaiting_second", first_reviewer=reviewer, updated_ns=now)
                    )
                    self._record(conn, case_id, row.user_id, reviewer, f"{decision}_first", reason)
                    return {"caseId": case_id, "status": "awaiting_second"}, int(row.user_id)
                if first == reviewer:
                    raise ComplianceError(
                        409, "Four-eyes: a second, different reviewer must decide this case"
                    )
            conn.execute(
                update(kyc_cases)
                .where(kyc_cases.c.id == case_id)
                .values(status=status, updated_ns=now)
            )
            self._record(conn, case_id, row.user_id, reviewer, decision, reason)
            self._apply_decision(conn, row, decision, now)
        return {"caseId": case_id, "status": status}, int(row.user_id)

    def _approvable(self, conn: Connection, case: Any, now: int) -> None:
        """A level is approved only on documents still valid (409 naming the expired ones:
        the reviewer asks for new ones with ``more``)."""
        profile = self._profile(conn, case.user_id)
        kind = profile.kind if profile is not None else "individual"
        expired = self._expired_kinds(conn, case.user_id, int(case.target_level), kind, now)
        if expired:
            raise ComplianceError(
                409, f"Documents expired: {', '.join(expired)}; ask for new ones (decision 'more')"
            )

    def _apply_decision(self, conn: Connection, case: Any, decision: str, now: int) -> None:
        profile = kyc_profiles.c.user_id == case.user_id
        if case.kind in ("kyc", "periodic"):
            values: dict[str, Any] = {"updated_ns": now}
            if decision == "approve":
                values |= {
                    "level": case.target_level,
                    "status": "approved",
                    "approved_ns": now,
                    "review_due_ns": now + self.config.review_interval_days * DAY_NS,
                }
            elif decision == "reject":
                values["status"] = "rejected"
            else:
                values["status"] = "more_info"
            conn.execute(update(kyc_profiles).where(profile).values(**values))
        elif case.kind == "sanctions" and decision == "confirm":
            self._ensure_profile(conn, case.user_id, now)
            conn.execute(
                update(kyc_profiles).where(profile).values(sanctioned=True, updated_ns=now)
            )
        elif case.kind == "location" and decision == "confirm":
            conn.execute(
                update(kyc_profiles).where(profile).values(status="closed", updated_ns=now)
            )

    def _ensure_profile(self, conn: Connection, user_id: int, now: int) -> None:
        if self._profile(conn, user_id) is None:
            conn.execute(
                insert(kyc_profiles).values(
                    user_id=user_id, kind="individual", level=0, status="none",
                    requested_level=1, residence="", citizenship="", incorporation="",
                    risk="high", sanctioned=False, sealed=None, approved_ns=0,
                    review_due_ns=0, updated_ns=now,
                )
            )  # fmt: skip

    async def decisions(self, user_id: int) -> list[dict[str, Any]]:
        return list(await self._run(self._decisions, user_id))

    def _decisions(self, user_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(kyc_decisions)
                .where(kyc_decisions.c.user_id == user_id)
                .order_by(kyc_decisions.c.id)
            ).all()
        return [
            {
                "id": r.id,
                "caseId": r.case_id,
                "account": r.user_id,
                "reviewer": r.reviewer,
                "decision": r.decision,
                "reason": r.reason,
                "detail": json.loads(r.detail) if r.detail else None,
                "timestamp": r.ts_ns,
            }
            for r in rows
        ]

    # --- sanctions (AddressScreen, list updates) ---------------------------------------------

    async def screen_withdrawal_address(
        self, account: int, address: str
    ) -> list[dict[str, object]]:
        """Hits for ``address`` (empty: clear). A hit opens a sanctions case for the account's
        user; the wallets refuse the withdrawal while it is open."""
        hits = [h.as_dict() for h in self.sanctions.screen_address(address)]
        if hits:
            await self._run(self._address_case, account, address, hits)
        return list(hits)

    def _address_case(self, account: int, address: str, hits: list[dict[str, object]]) -> None:
        with self.engine.begin() as conn:
            user_id = self._main_user(conn, account)
            self._open_case(
                conn,
                user_id,
                "sanctions",
                "high",
                0,
                {"hits": hits, "address": address, "at": "withdrawal"},
            )

    def _stamp(self) -> tuple[tuple[str, float, int], ...]:
        stamps = []
        for source in self.config.sanctions_lists:
            stat = source.path.stat()
            stamps.append((str(source.path), stat.st_mtime, stat.st_size))
        return tuple(stamps)

    def _load_lists(self) -> bool:
        """Load the lists if their files changed; True when they did."""
        stamp = self._stamp()
        if stamp == self._list_stamp:
            return False
        entries = []
        for source in self.config.sanctions_lists:
            entries.extend(load_list(source.path, source.format))
        self.sanctions.replace(entries)
        self._list_stamp = stamp
        log.info("sanctions lists loaded: %d entries", len(entries))
        return True

    async def reload_lists(self) -> dict[str, Any]:
        """Reload the list files if changed and, when they did, screen every account again."""
        changed = await self._run(self._load_lists)
        opened = await self._run(self._rescreen_all) if changed else 0
        return {"changed": changed, "entries": len(self.sanctions), "casesOpened": opened}

    async def reload_list_files(self) -> bool:
        """Reload the list files if changed, screening nobody again (a cluster gateway: its
        own screening is current; the leader's `rescreen` opens the cases)."""
        return bool(await self._run(self._load_lists))

    async def rescreen(self) -> int:
        """Screen every account against the lists now; the cases opened. Idempotent: a hit a
        sanctions case of the user already names opens none (a new leader runs it once)."""
        return int(await self._run(self._rescreen_all))

    def _rescreen_all(self) -> int:
        opened = 0
        with self.engine.begin() as conn:
            for row in conn.execute(select(kyc_profiles)).all():
                if row.sanctioned or not row.sealed:
                    continue
                hits = self._screen_application(self._unseal(row.sealed))
                if not hits:
                    continue
                seen = set()
                for case in conn.execute(
                    select(kyc_cases.c.detail).where(
                        kyc_cases.c.user_id == row.user_id, kyc_cases.c.kind == "sanctions"
                    )
                ):
                    for hit in json.loads(case.detail or "{}").get("hits", []):
                        seen.add((hit["list"], hit["entryId"]))
                new = [h for h in hits if (h["list"], h["entryId"]) not in seen]
                if new:
                    self._open_case(
                        conn,
                        row.user_id,
                        "sanctions",
                        "high",
                        0,
                        {"hits": new, "at": "list update"},
                    )
                    opened += 1
        return opened

    # --- restrictions (the sync) ---------------------------------------------------------------

    def desired(self, row: Any, expired: bool, now: int) -> tuple[int, int, bool, bool, int] | None:
        """The restriction a user's records imply (None: unrestricted)."""
        if row is not None and row.sanctioned:
            return (TradingMode.FROZEN, 0, False, False, RestrictionCause.SANCTIONS)
        if row is not None and row.status == "closed":
            return (TradingMode.CLOSE_ONLY, 0, False, True, RestrictionCause.IP_LOCATION)
        level = int(row.level) if row is not None else 0
        rule = self.config.levels.get(level, DEFAULT_LEVELS[0])
        if self.config.kyc_required and not rule.trade:
            return (
                TradingMode.CLOSE_ONLY,
                0,
                rule.deposit,
                rule.withdraw,
                RestrictionCause.KYC_REQUIRED,
            )
        if level > 0 and (expired or (row.review_due_ns and now >= row.review_due_ns)):
            return (TradingMode.CLOSE_ONLY, 0, False, True, RestrictionCause.KYC_REVIEW_OVERDUE)
        if row is not None and row.residence:
            places = [parse_place(row.residence)] + [
                Location(c) for c in row.citizenship.split(",") if c
            ]
            denied = self.config.policy.denied_products(places)
            if denied:
                return (TradingMode.ALLOWED, denied, True, True, RestrictionCause.JURISDICTION)
        return None

    async def sync_user(self, user_id: int) -> int:
        commands = await self._run(self._plan, [user_id])
        return await self._apply(commands)

    async def sync_all(self) -> int:
        """The periodic job: every known user's restriction brought in line (the periodic
        review included); the number of commands submitted."""
        user_ids = await self._run(self._users)
        commands = await self._run(self._plan, user_ids)
        return await self._apply(commands)

    def _users(self) -> list[int]:
        with self.engine.connect() as conn:
            ids = {
                int(r.id)
                for r in conn.execute(select(users.c.id).where(users.c.owner_id.is_(None)))
            }
            ids |= {int(r.user_id) for r in conn.execute(select(kyc_profiles.c.user_id))}
        return sorted(ids)

    def _plan(self, user_ids: Sequence[int]) -> list[SetAccountRestriction]:
        now = self._clock_ns()
        planned = []
        with self.engine.begin() as conn:
            for user_id in user_ids:
                row = self._profile(conn, user_id)
                want = self.desired(row, self._lapsed(conn, row, now), now)
                if want is not None and want[4] == RestrictionCause.KYC_REVIEW_OVERDUE:
                    self._periodic_case(conn, row, now)
                for account in self._family(conn, user_id):
                    applied, operator = self._applied_row(conn, account)
                    merged = merge(_unkey(operator), want)  # rule 1a
                    if applied == _key(merged):
                        continue
                    planned.append(_command(account, merged, "compliance"))
        return planned

    def _expired_kinds(
        self, conn: Connection, user_id: int, level: int, kind: str, now: int
    ) -> list[str]:
        """The document kinds ``level`` requires whose newest copy has expired (a fresh
        upload of a kind supersedes its expired copies)."""
        newest: dict[str, int] = {}
        for doc in conn.execute(
            select(kyc_documents.c.kind, kyc_documents.c.expires_ns).where(
                kyc_documents.c.user_id == user_id
            )
        ):
            newest[doc.kind] = max(newest.get(doc.kind, 0), int(doc.expires_ns))
        return [k for k in self._required(level, kind) if k in newest and newest[k] < now]

    def _lapsed(self, conn: Connection, row: Any, now: int) -> bool:
        """An approved level one of whose required documents has expired."""
        if row is None or row.level <= 0:
            return False
        return bool(self._expired_kinds(conn, row.user_id, int(row.level), row.kind, now))

    @staticmethod
    def _applied_row(conn: Connection, account: int) -> tuple[str, str]:
        """(what was last submitted, the operator's own restriction) of ``account``."""
        row = conn.execute(
            select(kyc_applied.c.restriction, kyc_applied.c.operator).where(
                kyc_applied.c.account == account
            )
        ).first()
        return ("", "") if row is None else (str(row.restriction), str(row.operator))

    def _implied(self, conn: Connection, account: int, now: int) -> Restriction | None:
        """What the records imply for ``account`` (None for an account no user owns)."""
        user_id = self._main_user(conn, account)
        row = self._profile(conn, user_id)
        known = conn.execute(select(users.c.id).where(users.c.id == user_id)).first()
        if row is None and known is None:
            return None
        return self.desired(row, self._lapsed(conn, row, now), now)

    def _keep_operator(self, account: int, operator: str) -> str:
        """Store the operator's restriction of ``account``; the one it replaces."""
        with self.engine.begin() as conn:
            _, before = self._applied_row(conn, account)
            self._upsert(conn, account, operator=operator)
        return before

    def _operator_plan(self, command: SetAccountRestriction) -> SetAccountRestriction:
        with self.engine.connect() as conn:
            required = self._implied(conn, command.account, self._clock_ns())
        merged = merge(_restriction_of(command), required)
        return _command(command.account, merged, command.text)

    async def operator_restriction(self, command: SetAccountRestriction) -> Result:
        """The operator's own restriction of one account (rule 1a): kept, merged with what
        compliance requires, and submitted; the core's result (a refusal stores nothing)."""
        if self.submitter is None:
            raise ComplianceError(503, "No sequencer to submit the restriction to")
        operator = _key(_restriction_of(command))
        before = await self._run(self._keep_operator, command.account, operator)
        merged = await self._run(self._operator_plan, command)
        result = await self.submitter.submit_async(merged)
        if any(isinstance(e, Rejected) for e in result.events):
            await self._run(self._keep_operator, command.account, before)
            return result
        await self._run(self._applied, command.account, _key(_restriction_of(merged)))
        return result

    def _periodic_case(self, conn: Connection, row: Any, now: int) -> None:
        """An overdue review or a lapsed document: the review is due from now on (so a fresh
        upload alone lifts nothing: a reviewer's approval sets the next due date), and a
        ``periodic`` case is open unless an application's case already is."""
        if not row.review_due_ns or row.review_due_ns > now:
            conn.execute(
                update(kyc_profiles)
                .where(kyc_profiles.c.user_id == row.user_id)
                .values(review_due_ns=now)
            )
        pending = conn.execute(
            select(kyc_cases.c.id).where(
                kyc_cases.c.user_id == row.user_id,
                kyc_cases.c.kind.in_(("periodic", "kyc")),  # a new application reviews it too
                kyc_cases.c.status.in_(OPEN_STATUSES),
            )
        ).first()
        if pending is None:
            self._open_case(
                conn,
                row.user_id,
                "periodic",
                row.risk,
                int(row.level),
                {"reason": "review due or documents expired"},
            )

    async def _apply(self, commands: Sequence[SetAccountRestriction]) -> int:
        if self.submitter is None:
            return 0
        submitted = 0
        for command in commands:
            result = await self.submitter.submit_async(command)
            if any(isinstance(e, Rejected) for e in result.events):
                log.error("restriction refused by the core: %s", command)
                continue
            await self._run(self._applied, command.account, _key(_restriction_of(command)))
            submitted += 1
        return submitted

    def _applied(self, account: int, key: str) -> None:
        with self.engine.begin() as conn:
            self._upsert(conn, account, restriction=key)

    def _upsert(self, conn: Connection, account: int, **values: str) -> None:
        """Set ``restriction`` or ``operator`` of ``account``'s row, keeping the other."""
        now = self._clock_ns()
        found = conn.execute(
            update(kyc_applied)
            .where(kyc_applied.c.account == account)
            .values(updated_ns=now, **values)
        ).rowcount
        if not found:
            row = {"restriction": "", "operator": "", **values}
            conn.execute(insert(kyc_applied).values(account=account, updated_ns=now, **row))

    # --- export and erasure ------------------------------------------------------------------

    async def export(self, user_id: int) -> dict[str, Any]:
        return dict(await self._run(self._export, user_id))

    def _export(self, user_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = self._profile(conn, user_id)
            docs = conn.execute(
                select(kyc_documents).where(kyc_documents.c.user_id == user_id)
            ).all()
            cases = conn.execute(select(kyc_cases).where(kyc_cases.c.user_id == user_id)).all()
        return {
            "account": user_id,
            "profile": None
            if row is None
            else {
                "kind": row.kind,
                "level": row.level,
                "status": row.status,
                "sanctioned": row.sanctioned,
                "application": self._unseal(row.sealed),
            },
            "documents": [
                {
                    "id": d.id,
                    "kind": d.kind,
                    "contentType": d.content_type,
                    "fileName": d.label,
                    "data": base64.b64encode(
                        documents.open_document(d.id, d.ciphertext, d.wrapped_key, self._fernet)
                    ).decode(),
                }
                for d in docs
            ],
            "cases": [self._case_row(c) for c in cases],
            "decisions": self._decisions(user_id),
        }

    async def erase(self, user_id: int, reviewer: str) -> dict[str, Any]:
        who = reviewer.strip()
        if not who or len(who) > REVIEWER_CHARS_MAX:
            raise ComplianceError(400, "'reviewer' is required: who erases")
        answer = dict(await self._run(self._erase, user_id, who))
        await self.sync_user(user_id)
        return answer

    def _erase(self, user_id: int, reviewer: str) -> dict[str, Any]:
        with self.engine.begin() as conn:
            row = self._profile(conn, user_id)
            if row is not None and row.sanctioned:
                raise ComplianceError(409, "A confirmed sanctions hit is kept (legal hold)")
            documents_deleted = conn.execute(
                delete(kyc_documents).where(kyc_documents.c.user_id == user_id)
            ).rowcount
            conn.execute(delete(kyc_profiles).where(kyc_profiles.c.user_id == user_id))
            conn.execute(
                update(kyc_cases).where(kyc_cases.c.user_id == user_id).values(detail=None)
            )
            conn.execute(
                update(kyc_decisions).where(kyc_decisions.c.user_id == user_id).values(detail=None)
            )
            self._record(conn, 0, user_id, reviewer, "erased", "personal data erased on request")
        return {"account": user_id, "erased": True, "documents": documents_deleted}


class CompliancePolicy:
    """The wallets' ``WithdrawalPolicy`` (``services.wallets.policy``) over ``Compliance``:
    synchronous, as the wallets call it from a worker thread.

    - ``check``: a withdrawal address on a sanctions list is refused with a neutral message
      and opens a sanctions case (the detail is in the case, not the answer); a frozen
      (confirmed sanctions) account, or a level that may not withdraw when KYC is required,
      is refused. The core refuses restricted accounts again at ``WithdrawalRequest``.
    - ``daily_limit``: the account's level's limit per currency (rolling 24 h in the
      wallets); without ``kyc_required``, an unverified account has level 1's limits.
    - ``deposits_allowed``: the level allows deposits (always without ``kyc_required``) and
      the account is not frozen.
    """

    def __init__(self, compliance: Compliance) -> None:
        self.compliance = compliance

    def _rule(self, account: int) -> tuple[LevelRule, bool]:
        c = self.compliance
        with c.engine.connect() as conn:
            row = c._profile(conn, c._main_user(conn, account))
        level = int(row.level) if row is not None else 0
        sanctioned = bool(row.sanctioned) if row is not None else False
        if level == 0 and not c.config.kyc_required:
            level = 1
        return c.config.levels.get(level, DEFAULT_LEVELS[0]), sanctioned

    def check(
        self, account: int, currency: str, network: str, address: str, amount: int
    ) -> PolicyVerdict:
        c = self.compliance
        hits = [h.as_dict() for h in c.sanctions.screen_address(address)]
        if hits:
            c._address_case(account, address, hits)
            return PolicyVerdict(False, "This address cannot receive withdrawals")
        rule, sanctioned = self._rule(account)
        if sanctioned:
            return PolicyVerdict(False, "Account frozen: sanctions screening")
        if not rule.withdraw:
            return PolicyVerdict(False, "Withdrawals need a verified identity (KYC level 1)")
        return PolicyVerdict(True)

    def daily_limit(self, account: int, currency: str) -> int:
        rule, sanctioned = self._rule(account)
        return 0 if sanctioned or not rule.withdraw else int(rule.daily_withdrawal.get(currency, 0))

    def deposits_allowed(self, account: int) -> bool:
        rule, sanctioned = self._rule(account)
        return rule.deposit and not sanctioned


def decode_document(text: str) -> bytes:
    """Base64 text to bytes (for JSON uploads), or ``ComplianceError``."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ComplianceError(400, "Invalid document: not base64") from None
