"""Proof of liabilities at size: build, write and check a tree for N accounts.

For ``PORL_ACCOUNTS`` accounts (default 100,000) with random liabilities: the seconds to build
the blinded tree (split, shuffle, HMAC leaves, hash nodes), its file size, the seconds for the
full check ``perpetua verify-liabilities`` makes (parse + every node) and for one account's
leaf scan. JSON on stdout.
"""

import json
import os
import secrets
import sys
import time

from perpetua.services.porl.proof import check_tree, find_account, parse_proof
from perpetua.services.porl.tree import build_tree, render

ACCOUNTS = int(os.environ.get("PORL_ACCOUNTS", "100000"))


def main() -> None:
    amounts = {account: 1 + secrets.randbelow(10**10) for account in range(1, ACCOUNTS + 1)}
    nonces = {account: secrets.token_bytes(32) for account in amounts}
    began = time.perf_counter()
    tree = build_tree(900_000, amounts, nonces)
    data = render(tree)
    built = time.perf_counter() - began
    began = time.perf_counter()
    parsed = parse_proof(data.decode("ascii"))
    check_tree(parsed)
    checked = time.perf_counter() - began
    began = time.perf_counter()
    found = find_account(parsed, 1, nonces[1], account_nonce=True)
    scanned = time.perf_counter() - began
    assert found.total == amounts[1]
    print(f"porl: {ACCOUNTS} accounts, {len(tree.leaves)} leaves", file=sys.stderr)
    print(json.dumps({
        "accounts": ACCOUNTS,
        "leaves": len(tree.leaves),
        "file_bytes": len(data),
        "build_and_render_s": round(built, 3),
        "parse_and_check_all_s": round(checked, 3),
        "one_account_scan_s": round(scanned, 3),
        "load_average": os.getloadavg(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
