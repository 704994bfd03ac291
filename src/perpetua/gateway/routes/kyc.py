"""KYC over REST: the applicant's flow and the operator's review queue (services.compliance).

Applicant (signed: API key or browser session):

    GET  /user/kyc                      level, application status, missing documents, allowances
    POST /user/kyc/application          the questionnaire (JSON; business: entity, owners)
    POST /user/kyc/document             multipart/form-data: ``kind`` and ``file`` (JPEG, PNG, PDF)
    POST /user/kyc/submit               send the application to review

Operator (``x-operator-key``; ``reviewer`` names who decides, recorded with every decision):

    GET  /admin/kyc/queue               open cases, oldest first
    GET  /admin/kyc/case                id: the case, the application and its documents' list
    GET  /admin/kyc/document            id: one document, decrypted (reviewers only)
    POST /admin/kyc/decide              caseId, reviewer, decision (approve | reject | more |
                                        confirm | clear), reason
    GET  /admin/kyc/decisions           account: the append-only decision trail
    GET  /admin/kyc/export              account: everything held about the person
    POST /admin/kyc/erase               account, reviewer: erase personal data (decisions kept)
    POST /admin/kyc/reloadLists         re-read the sanctions lists; screen everyone if changed
    POST /admin/kyc/screenAddress       account, address: screen a withdrawal address

Uploads are at most ``UPLOAD_BYTES_MAX`` bytes on the wire; everything else about a document
(type by content, EXIF, names, encryption) is ``services.documents``'. Errors are BitMEX's shape.
"""

from collections.abc import Awaitable
from typing import Final, TypeVar

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from perpetua.gateway.context import Context
from perpetua.gateway.errors import ApiError, bad_request
from perpetua.gateway.routes.operator import require_operator
from perpetua.gateway.routes.spec import Spec
from perpetua.services.compliance import ComplianceError, CompliancePort
from perpetua.services.documents import DOCUMENT_BYTES_MAX
from perpetua.wire.values import JsonRow

__all__ = ["KYC_DOCS", "SPECS", "UPLOAD_BYTES_MAX"]

UPLOAD_BYTES_MAX: Final = DOCUMENT_BYTES_MAX + 16 * 1024  # the file and the form around it
PARTS_MAX: Final = 4
PART_HEADERS_BYTES_MAX: Final = 2_048

_T = TypeVar("_T")


def _compliance(ctx: Context) -> CompliancePort:
    if ctx.gw.compliance is None:
        raise ApiError(404, "Compliance is not enabled on this venue")
    return ctx.gw.compliance


async def _ask(awaitable: Awaitable[_T]) -> _T:
    try:
        return await awaitable
    except ComplianceError as error:
        raise ApiError(error.status, error.message) from None


class _Part:
    __slots__ = ("data", "headers")

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.data = bytearray()


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[str, str, bytes]]:
    """name -> (file name, content type, bytes) of a multipart/form-data body; 400/415 when
    it is not one, or malformed."""
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise ApiError(415, "Content-Type must be multipart/form-data with a boundary")
    parts: list[_Part] = []
    field: list[bytes] = [b""]
    value: list[bytes] = [b""]

    def begin() -> None:
        if len(parts) >= PARTS_MAX:
            raise bad_request(f"At most {PARTS_MAX} form parts")
        parts.append(_Part())

    def data(chunk: bytes, start: int, end: int) -> None:
        parts[-1].data += chunk[start:end]

    def header_field(chunk: bytes, start: int, end: int) -> None:
        field[0] += chunk[start:end]

    def header_value(chunk: bytes, start: int, end: int) -> None:
        value[0] += chunk[start:end]

    def header_end() -> None:
        if len(field[0]) + len(value[0]) > PART_HEADERS_BYTES_MAX:
            raise bad_request("Form part headers too long")
        parts[-1].headers[field[0].strip().lower()] = value[0].strip()
        field[0], value[0] = b"", b""

    parser = MultipartParser(
        options[b"boundary"],
        {
            "on_part_begin": begin,
            "on_part_data": data,
            "on_header_field": header_field,
            "on_header_value": header_value,
            "on_header_end": header_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError:
        raise bad_request("Malformed multipart body") from None
    fields: dict[str, tuple[str, str, bytes]] = {}
    for part in parts:
        disposition, params = parse_options_header(part.headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if disposition != b"form-data" or not name:
            raise bad_request("Malformed multipart body: a part without a name")
        if name in fields:
            raise bad_request(f"Duplicate form field {name!r}")
        file_name = params.get(b"filename", b"").decode("utf-8", "replace")
        part_type = part.headers.get(b"content-type", b"").decode("latin-1")
        fields[name] = (file_name, part_type, bytes(part.data))
    return fields


async def get_kyc(ctx: Context) -> JsonRow:
    return await _ask(_compliance(ctx).status(ctx.account))


async def post_application(ctx: Context) -> JsonRow:
    return await _ask(_compliance(ctx).save_application(ctx.account, ctx.params.values))


async def post_document(ctx: Context) -> JsonRow:
    compliance = _compliance(ctx)
    content_type = ""
    for name, value in ctx.scope["headers"]:
        if name == b"content-type":
            content_type = value.decode("latin-1")
    fields = parse_multipart(ctx.body, content_type)
    if "kind" not in fields or "file" not in fields:
        raise bad_request("The form needs 'kind' and 'file'")
    kind = fields["kind"][2].decode("utf-8", "replace").strip()
    file_name, part_type, data = fields["file"]
    return await _ask(compliance.upload_document(ctx.account, kind, data, part_type, file_name))


async def post_submit(ctx: Context) -> JsonRow:
    return await _ask(_compliance(ctx).submit(ctx.account))


def _account(ctx: Context) -> int:
    account = ctx.params.integer("account")
    if account is None or account <= 0:
        raise bad_request("Invalid account")
    return account


async def get_queue(ctx: Context) -> list[JsonRow]:
    require_operator(ctx)
    return await _ask(_compliance(ctx).queue())


async def get_case(ctx: Context) -> JsonRow:
    require_operator(ctx)
    case_id = ctx.params.integer("id")
    if case_id is None or case_id <= 0:
        raise bad_request("Invalid id")
    return await _ask(_compliance(ctx).case(case_id))


async def get_document(ctx: Context) -> JsonRow:
    require_operator(ctx)
    doc_id = ctx.params.required_string("id")
    if len(doc_id) != 32 or not all(c in "0123456789abcdef" for c in doc_id):
        raise bad_request("Invalid id")
    return await _ask(_compliance(ctx).document(doc_id))


async def post_decide(ctx: Context) -> JsonRow:
    require_operator(ctx)
    case_id = ctx.params.integer("caseId")
    if case_id is None or case_id <= 0:
        raise bad_request("Invalid caseId")
    return await _ask(
        _compliance(ctx).decide(
            case_id,
            ctx.params.string("reviewer") or "",
            ctx.params.string("decision") or "",
            ctx.params.string("reason") or "",
        )
    )


async def get_decisions(ctx: Context) -> list[JsonRow]:
    require_operator(ctx)
    return await _ask(_compliance(ctx).decisions(_account(ctx)))


async def get_export(ctx: Context) -> JsonRow:
    require_operator(ctx)
    return await _ask(_compliance(ctx).export(_account(ctx)))


async def post_erase(ctx: Context) -> JsonRow:
    require_operator(ctx)
    return await _ask(_compliance(ctx).erase(_account(ctx), ctx.params.string("reviewer") or ""))


async def post_reload_lists(ctx: Context) -> JsonRow:
    require_operator(ctx)
    return await _ask(_compliance(ctx).reload_lists())


async def post_screen_address(ctx: Context) -> dict[str, object]:
    require_operator(ctx)
    address = ctx.params.required_string("address")
    if len(address) > 128:
        raise bad_request("Invalid address")
    hits = await _ask(_compliance(ctx).screen_withdrawal_address(_account(ctx), address))
    return {"address": address, "hits": hits, "allowed": not hits}


KYC_DOCS: list[tuple[str, str, str, list[tuple[str, str, bool]]]] = [
    ("/user/kyc", "get", "KYC level, application status, missing documents (signed).", []),
    (
        "/user/kyc/application",
        "post",
        "The KYC questionnaire (JSON; signed).",
        [
            ("kind", "string", False),
            ("level", "integer", False),
            ("name", "string", True),
            ("dateOfBirth", "string", True),
            ("residence", "string", True),
            ("citizenship", "string", True),
            ("address", "string", False),
            ("occupation", "string", False),
            ("sourceOfFunds", "string", False),
            ("entityName", "string", False),
            ("incorporationCountry", "string", False),
            ("registrationNumber", "string", False),
            ("beneficialOwners", "string", False),
        ],
    ),
    (
        "/user/kyc/document",
        "post",
        "Upload a KYC document: multipart/form-data with kind and file (signed).",
        [("kind", "string", True), ("file", "file", True)],
    ),
    ("/user/kyc/submit", "post", "Send the KYC application to review (signed).", []),
    ("/admin/kyc/queue", "get", "Open review cases.", []),
    (
        "/admin/kyc/case",
        "get",
        "One case with its application and documents.",
        [("id", "integer", True)],
    ),
    ("/admin/kyc/document", "get", "One document, decrypted.", [("id", "string", True)]),
    (
        "/admin/kyc/decide",
        "post",
        "Decide a case (four-eyes for high-risk approvals).",
        [
            ("caseId", "integer", True),
            ("reviewer", "string", True),
            ("decision", "string", True),
            ("reason", "string", False),
        ],
    ),
    (
        "/admin/kyc/decisions",
        "get",
        "The decision trail of an account.",
        [("account", "integer", True)],
    ),
    ("/admin/kyc/export", "get", "Everything held about a person.", [("account", "integer", True)]),
    (
        "/admin/kyc/erase",
        "post",
        "Erase a person's data (decisions kept without personal fields).",
        [("account", "integer", True), ("reviewer", "string", True)],
    ),
    ("/admin/kyc/reloadLists", "post", "Re-read the sanctions lists.", []),
    (
        "/admin/kyc/screenAddress",
        "post",
        "Screen a withdrawal address against the sanctions lists.",
        [("account", "integer", True), ("address", "string", True)],
    ),
]

SPECS = [
    Spec("/user/kyc", "GET", get_kyc, private=True),
    Spec("/user/kyc/application", "POST", post_application, private=True),
    Spec(
        "/user/kyc/document",
        "POST",
        post_document,
        private=True,
        body_bytes_max=UPLOAD_BYTES_MAX,
        raw_body=True,
    ),
    Spec("/user/kyc/submit", "POST", post_submit, private=True),
    Spec("/admin/kyc/queue", "GET", get_queue),
    Spec("/admin/kyc/case", "GET", get_case),
    Spec("/admin/kyc/document", "GET", get_document),
    Spec("/admin/kyc/decide", "POST", post_decide),
    Spec("/admin/kyc/decisions", "GET", get_decisions),
    Spec("/admin/kyc/export", "GET", get_export),
    Spec("/admin/kyc/erase", "POST", post_erase),
    Spec("/admin/kyc/reloadLists", "POST", post_reload_lists),
    Spec("/admin/kyc/screenAddress", "POST", post_screen_address),
]
