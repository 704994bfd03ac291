"""``perpetua operator``: the operator's commands against a running venue, over its admin routes.

The venue has one writer, so an operator never edits a data dir beside it: each command is an
HTTP request to ``/api/v1/admin/*`` with the operator key, and the venue turns it into a core
command through the sequencer (``gateway.routes.operator``).

    perpetua operator instruments
    perpetua operator halt XBTUSD | resume XBTUSD
    perpetua operator interest-rate XBTUSD 0.0001
    perpetua operator fee-tier 1001 3
    perpetua operator list-future XBT 2027 3
    perpetua operator accounts                 # insurance fund and the other system accounts
    perpetua operator catalogue futures.toml   # define its series and list its quarters now
    perpetua operator announce "Title" [--content TEXT] [--link URL] [--urgent]
    perpetua operator withdraw-announcement 42
    perpetua operator restriction 1001         # what the account may do, and why
    perpetua operator restrict 1001 CloseOnly --cause KycReviewOverdue --no-withdrawals
    perpetua operator restrict 1001 Allowed --deny Derivatives,TradFi --cause Jurisdiction
    perpetua operator restrict 1001 Allowed    # lift every restriction
    perpetua operator liquidate 1001 --band 0.02 --text "residence breach"
    perpetua operator porl-snapshot [--height H]   # publish a proof of reserves and liabilities
    perpetua operator porl-message H           # the text cold reserve addresses sign for height H
    perpetua operator porl-signature H 0xADDRESS 0xSIGNATURE   # import a cold signature
    perpetua operator kyc-queue                # open review cases
    perpetua operator kyc-case 7               # a case, its application and documents
    perpetua operator kyc-decide 7 approve --reviewer rita --reason "documents match"
    perpetua operator kyc-decisions 1001       # the decision trail
    perpetua operator kyc-export 1001 | kyc-erase 1001 --reviewer dpo
    perpetua operator sanctions-reload         # re-read the lists, screen everyone if changed

``--url`` (default ``http://127.0.0.1:8000``) and ``--operator-key`` (default
``$PERPETUA_OPERATOR_KEY``) say where and as whom. The answer is printed as JSON; a refusal
exits 1 with BitMEX's error message.
"""

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Final

__all__ = ["OperatorError", "add_operator_parser", "run_operator"]

DEFAULT_URL: Final = "http://127.0.0.1:8000"
REQUEST_TIMEOUT_S: Final = 10.0
OPERATOR_KEY_ENV: Final = "PERPETUA_OPERATOR_KEY"


class OperatorError(Exception):
    """The venue refused or could not be reached; the message says which and why."""


def add_operator_parser(subparsers: Any, help_text: str) -> None:
    parser = subparsers.add_parser("operator", help=help_text, description=help_text)
    parser.add_argument("--url", default=DEFAULT_URL, help="the venue (default: %(default)s)")
    parser.add_argument(
        "--operator-key", default=None, help=f"the operator key (default: ${OPERATOR_KEY_ENV})"
    )
    commands = parser.add_subparsers(dest="operator_command", metavar="COMMAND", required=True)
    commands.add_parser("instruments", help="list instruments and their states")
    for name, what in (
        ("halt", "stop trading a market (Closed)"),
        ("resume", "open a halted market again (Open)"),
    ):
        commands.add_parser(name, help=what).add_argument("symbol")
    rate = commands.add_parser("interest-rate", help="a perpetual's interest per interval")
    rate.add_argument("symbol")
    rate.add_argument("rate", help="per funding interval, e.g. 0.0001")
    tier = commands.add_parser("fee-tier", help="set an account's fee tier")
    tier.add_argument("account", type=int)
    tier.add_argument("tier", type=int)
    future = commands.add_parser("list-future", help="list a quarterly future")
    future.add_argument("root")
    future.add_argument("year", type=int)
    future.add_argument("quarter", type=int)
    commands.add_parser("accounts", help="the insurance fund and the other system accounts")
    catalogue = commands.add_parser(
        "catalogue", help="define a catalogue file's futures series and list its quarters"
    )
    catalogue.add_argument("file", type=Path)
    announce = commands.add_parser("announce", help="publish a site announcement")
    announce.add_argument("title")
    announce.add_argument("--content", default="")
    announce.add_argument("--link", default="")
    announce.add_argument("--urgent", action="store_true", help="also a banner (/urgent)")
    withdraw = commands.add_parser("withdraw-announcement", help="take an announcement down")
    withdraw.add_argument("id", type=int)
    commands.add_parser("restriction", help="an account's restriction").add_argument(
        "account", type=int
    )
    restrict = commands.add_parser("restrict", help="set an account's restriction")
    restrict.add_argument("account", type=int)
    restrict.add_argument("trading", choices=("Allowed", "CloseOnly", "Frozen"))
    restrict.add_argument("--deny", default="", help="product classes: Spot,Derivatives,TradFi")
    restrict.add_argument("--no-deposits", action="store_true", help="refuse deposits")
    restrict.add_argument("--no-withdrawals", action="store_true", help="refuse withdrawals")
    restrict.add_argument("--cause", default="Operator", help="why (default: %(default)s)")
    restrict.add_argument("--text", default="", help="a note kept in the journal")
    liquidate = commands.add_parser(
        "liquidate", help="cancel an account's orders and close its positions at market"
    )
    liquidate.add_argument("account", type=int)
    liquidate.add_argument("--band", default="0.05", help="price protection (default: 5%%)")
    liquidate.add_argument("--text", default="", help="a note kept in the journal")
    porl = commands.add_parser("porl-snapshot", help="publish a proof of reserves and liabilities")
    porl.add_argument("--height", type=int, default=None, help="the chain height (default: now)")
    message = commands.add_parser("porl-message", help="the message reserve addresses sign")
    message.add_argument("height", type=int)
    imported = commands.add_parser("porl-signature", help="import a cold address's signature")
    imported.add_argument("height", type=int)
    imported.add_argument("address")
    imported.add_argument("signature")
    commands.add_parser("kyc-queue", help="open KYC and sanctions review cases")
    commands.add_parser("kyc-case", help="one review case").add_argument("case", type=int)
    decide = commands.add_parser("kyc-decide", help="decide a review case")
    decide.add_argument("case", type=int)
    decide.add_argument("decision", choices=("approve", "reject", "more", "confirm", "clear"))
    decide.add_argument("--reviewer", required=True, help="who decides (recorded)")
    decide.add_argument("--reason", default="", help="why (recorded; required to refuse)")
    for name, what in (
        ("kyc-decisions", "an account's decision trail"),
        ("kyc-export", "everything held about a person"),
    ):
        commands.add_parser(name, help=what).add_argument("account", type=int)
    erase = commands.add_parser("kyc-erase", help="erase a person's data (decisions kept)")
    erase.add_argument("account", type=int)
    erase.add_argument("--reviewer", required=True, help="who erases (recorded)")
    commands.add_parser("sanctions-reload", help="re-read the sanctions lists")


def _request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    command = args.operator_command
    if command == "instruments":
        return "GET", "/admin/instruments", None
    if command in ("halt", "resume"):
        state = "Closed" if command == "halt" else "Open"
        return "POST", "/admin/instrument/state", {"symbol": args.symbol, "state": state}
    if command == "interest-rate":
        return "POST", "/admin/interestRate", {"symbol": args.symbol, "rate": args.rate}
    if command == "fee-tier":
        return "POST", "/admin/feeTier", {"account": args.account, "tier": args.tier}
    if command == "list-future":
        return (
            "POST",
            "/admin/listFuture",
            {"root": args.root, "year": args.year, "quarter": args.quarter},
        )
    if command == "accounts":
        return "GET", "/admin/accounts", None
    if command == "announce":
        body = {"title": args.title, "content": args.content, "link": args.link}
        return "POST", "/admin/announcement", {**body, "urgent": args.urgent}
    if command == "withdraw-announcement":
        return "DELETE", "/admin/announcement", {"id": args.id}
    if command == "restriction":
        return (
            "GET",
            "/admin/restriction?" + urllib.parse.urlencode({"account": args.account}),
            None,
        )
    if command == "restrict":
        body = {
            "account": args.account,
            "trading": args.trading,
            "productsDenied": args.deny,
            "deposits": not args.no_deposits,
            "withdrawals": not args.no_withdrawals,
            "cause": args.cause,
            "text": args.text,
        }
        return "POST", "/admin/restriction", body
    if command == "liquidate":
        body = {"account": args.account, "band": args.band, "text": args.text}
        return "POST", "/admin/liquidate", body
    if command == "porl-message":
        return "GET", f"/admin/porl/message?height={args.height}", None
    if command == "porl-signature":
        body = {"height": args.height, "address": args.address, "signature": args.signature}
        return "POST", "/admin/porl/signature", body
    if command == "porl-snapshot":
        return (
            "POST",
            "/admin/porl/snapshot",
            ({} if args.height is None else {"height": args.height}),
        )
    if command == "kyc-queue":
        return "GET", "/admin/kyc/queue", None
    if command == "kyc-case":
        return "GET", "/admin/kyc/case?" + urllib.parse.urlencode({"id": args.case}), None
    if command == "kyc-decide":
        body = {
            "caseId": args.case,
            "decision": args.decision,
            "reviewer": args.reviewer,
            "reason": args.reason,
        }
        return "POST", "/admin/kyc/decide", body
    if command in ("kyc-decisions", "kyc-export"):
        path = "/admin/kyc/decisions" if command == "kyc-decisions" else "/admin/kyc/export"
        return "GET", path + "?" + urllib.parse.urlencode({"account": args.account}), None
    if command == "kyc-erase":
        return "POST", "/admin/kyc/erase", {"account": args.account, "reviewer": args.reviewer}
    if command == "sanctions-reload":
        return "POST", "/admin/kyc/reloadLists", {}
    raise OperatorError(f"unknown operator command {command!r}")


_ALREADY = ("Instrument already listed",)  # a series or quarter defined before: not an error


def _catalogue(args: argparse.Namespace, key: str) -> list[Any]:
    """Each series of the file (``runtime.catalogue``), then each listed quarter; ones the
    venue has already are reported, not failed."""
    from perpetua.runtime.catalogue import (  # imported here: every other command stays light
        CatalogueError,
        load_catalogue,
    )

    try:
        entries = load_catalogue(args.file)
    except CatalogueError as error:
        raise OperatorError(str(error)) from None
    answers: list[Any] = []
    for entry in entries:
        body = {**entry.series._asdict(), "payout": entry.series.payout.name.lower()}
        answers.append(_send_tolerant(args.url, key, "/admin/futureSeries", body))
    for entry in entries:
        for year, quarter in entry.listings:
            body = {"root": entry.series.key, "year": year, "quarter": quarter}
            answers.append(_send_tolerant(args.url, key, "/admin/listFuture", body))
    return answers


def _send_tolerant(url: str, key: str, path: str, body: dict[str, Any]) -> Any:
    try:
        return _send(url, key, "POST", path, body)
    except OperatorError as error:
        if any(text in str(error) for text in _ALREADY):
            return {**body, "already": True}
        raise


def run_operator(args: argparse.Namespace) -> Any:
    key = args.operator_key or os.environ.get(OPERATOR_KEY_ENV, "")
    if not key:
        raise OperatorError(f"no operator key: pass --operator-key or set ${OPERATOR_KEY_ENV}")
    if args.operator_command == "catalogue":
        return _catalogue(args, key)
    method, path, body = _request(args)
    return _send(args.url, key, method, path, body)


def _send(base_url: str, key: str, method: str, path: str, body: dict[str, Any] | None) -> Any:
    url = base_url.rstrip("/") + "/api/v1" + path
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"x-operator-key": key, "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = error.reason
        raise OperatorError(f"{error.code}: {message}") from None
    except (urllib.error.URLError, OSError) as error:
        raise OperatorError(f"cannot reach {base_url}: {error}") from None
