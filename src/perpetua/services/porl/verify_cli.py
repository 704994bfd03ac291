"""``perpetua verify-liabilities`` and ``perpetua verify-reserves``: what a user runs.

    perpetua verify-liabilities --proof FILE --account N --nonce HEX
    perpetua verify-liabilities --proof FILE --account N --account-nonce HEX
    perpetua verify-reserves --reserves FILE --rpc URL [--token USDt=0x...]

verify-liabilities checks the whole file first (every node against its children: a damaged
file is refused naming its first bad line), then opens the account's leaves with the nonce
(``--nonce``: the sub-nonce of this proof, as ``GET /porl/nonce`` gives it; ``--account-nonce``:
the lifetime nonce) and recomputes each path to the root. It prints the leaves found, the
account's included total, the root's total and digest. Exit 0: the file holds and the account
has at least one leaf; 1: the file is damaged or a path does not add up; 2: the file holds but
this nonce opens no leaf (the account is not included under this nonce).

verify-reserves re-reads every balance from a node at the proof's block and checks every
signature against the message (``reserves.verify_reserves``); exit 0 only if nothing differs.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, Final, NamedTuple

from perpetua.services.porl.proof import ProofError, find_account, read_proof

__all__ = ["EXIT_NOT_INCLUDED", "Outcome", "add_verify_parsers", "run_verify"]

EXIT_OK: Final = 0
EXIT_INVALID: Final = 1
EXIT_NOT_INCLUDED: Final = 2
_HEX32: Final = re.compile(r"(0x)?[0-9a-fA-F]{64}")
_TOKEN: Final = re.compile(r"([A-Za-z]{2,8})=(0x[0-9a-fA-F]{40})")


def add_verify_parsers(subparsers: Any) -> None:
    text = "check that an account is included in a published proof of liabilities"
    sub = subparsers.add_parser("verify-liabilities", help=text, description=text)
    sub.add_argument("--proof", type=Path, required=True, help="the proof file (.csv)")
    sub.add_argument("--account", type=int, required=True, help="your account number")
    keys = sub.add_mutually_exclusive_group(required=True)
    keys.add_argument("--nonce", help="this proof's nonce (GET /porl/nonce: nonce), 64 hex")
    keys.add_argument("--account-nonce", help="your lifetime nonce (accountNonce), 64 hex")
    text = "check a published proof of reserves against an Ethereum node"
    sub = subparsers.add_parser("verify-reserves", help=text, description=text)
    sub.add_argument("--reserves", type=Path, required=True, help="the reserves file (.json)")
    sub.add_argument("--rpc", required=True, help="the node's JSON-RPC URL")
    sub.add_argument(
        "--token",
        action="append",
        default=[],
        help="a token currency's contract, as CURRENCY=0xADDRESS (USDt=0x...); repeatable",
    )


def _nonce(text: str) -> bytes:
    if _HEX32.fullmatch(text) is None:
        raise ValueError("a nonce is 64 hex digits")
    return bytes.fromhex(text.removeprefix("0x"))


class Outcome(NamedTuple):
    code: int  # the exit status
    out: list[str]  # lines for stdout
    err: list[str]  # lines for stderr


def _liabilities(args: argparse.Namespace) -> Outcome:
    out: list[str] = []
    err: list[str] = []
    try:
        key = _nonce(args.nonce if args.nonce is not None else args.account_nonce)
    except ValueError as error:
        err.append(f"perpetua verify-liabilities: {error}")
        return Outcome(EXIT_INVALID, out, err)
    if not 0 <= args.account < 2**64:
        err.append("perpetua verify-liabilities: an account is 0 .. 2**64-1")
        return Outcome(EXIT_INVALID, out, err)
    try:
        tree = read_proof(args.proof)
        found = find_account(tree, args.account, key, account_nonce=args.nonce is None)
    except OSError as error:
        err.append(f"perpetua verify-liabilities: {args.proof}: {error}")
        return Outcome(EXIT_INVALID, out, err)
    except ProofError as error:
        err.append(f"perpetua verify-liabilities: {args.proof}: {error}")
        return Outcome(EXIT_INVALID, out, err)
    out.append(f"height {found.height}: {found.leaf_count} leaves, every node checked")
    for index, value in found.leaves:
        out.append(f"leaf {index}: {value:,}")
    out.append(f"account {found.account} included total: {found.total:,}")
    out.append(f"root total: {found.root_value:,}")
    out.append(f"root digest: {found.root_digest}")
    if not found.leaves:
        err.append("no leaf opens with this nonce for this account")
        return Outcome(EXIT_NOT_INCLUDED, out, err)
    return Outcome(EXIT_OK, out, err)


def _reserves(args: argparse.Namespace) -> Outcome:
    out: list[str] = []
    err: list[str] = []
    from perpetua.chain.rpc import JsonRpc, RpcError, RpcUnavailable
    from perpetua.services.porl.reserves import EvmReserveChain, verify_reserves

    tokens: dict[str, str] = {}
    for text in args.token:
        match = _TOKEN.fullmatch(text)
        if match is None:
            err.append(f"perpetua verify-reserves: --token {text!r}: CURRENCY=0xADDRESS")
            return Outcome(EXIT_INVALID, out, err)
        tokens[match.group(1)] = match.group(2)
    try:
        document = json.loads(args.reserves.read_bytes())
    except (OSError, ValueError) as error:
        err.append(f"perpetua verify-reserves: {args.reserves}: {error}")
        return Outcome(EXIT_INVALID, out, err)
    rpc = JsonRpc(args.rpc)
    try:
        problems = verify_reserves(document, EvmReserveChain(rpc, tokens))
    except (RpcUnavailable, RpcError, LookupError, KeyError, TypeError, ValueError) as error:
        problems = [f"cannot check: {error!r}"]
    finally:
        rpc.close()
    for problem in problems:
        err.append(f"FAIL {problem}")
    if problems:
        return Outcome(EXIT_INVALID, out, err)
    out.append(f"height {document['height']} on chain {document['chainId']}: every signature and")
    out.append(f"balance checked; totals {json.dumps(document['totals'], sort_keys=True)}")
    return Outcome(EXIT_OK, out, err)


def run_verify(args: argparse.Namespace) -> Outcome:
    if args.command == "verify-liabilities":
        return _liabilities(args)
    return _reserves(args)
