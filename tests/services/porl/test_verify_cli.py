"""``perpetua verify-liabilities``: prints the account's total, the root's total and digest;
exit 1 naming the first bad line of a damaged file, 2 when the nonce opens nothing."""

import re
import secrets
from pathlib import Path

import pytest

from perpetua.cli import main
from perpetua.services.porl.tree import build_tree, render, sub_nonce

HEIGHT = 1234
BOOK = {1: 10_000, 2: 3, 3: 99_999_999}


@pytest.fixture
def proof(tmp_path: Path) -> tuple[Path, dict[int, bytes], str]:
    nonces = {a: secrets.token_bytes(32) for a in BOOK}
    tree = build_tree(HEIGHT, BOOK, nonces)
    path = tmp_path / "liabilities.csv"
    path.write_bytes(render(tree))
    return path, nonces, tree.root.digest.hex()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["verify-liabilities", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_each_account_sees_its_total_the_root_and_its_digest(proof, capsys) -> None:
    path, nonces, digest = proof
    for account, amount in BOOK.items():
        sub = sub_nonce(nonces[account], HEIGHT, account).hex()
        for flag, key in (("--nonce", sub), ("--account-nonce", nonces[account].hex())):
            code, out, _ = run(capsys, "--proof", str(path), "--account", str(account), flag, key)
            assert code == 0
            assert f"account {account} included total: {amount:,}" in out
            assert f"root total: {sum(BOOK.values()):,}" in out
            assert f"root digest: {digest}" in out


def test_a_nonce_that_opens_nothing_exits_2(proof, capsys) -> None:
    path, nonces, _ = proof
    code, out, err = run(
        capsys, "--proof", str(path), "--account", "2", "--account-nonce", nonces[1].hex()
    )
    assert code == 2 and "included total: 0" in out and "no leaf" in err


def test_a_damaged_file_exits_1_naming_the_line(proof, capsys) -> None:
    path, nonces, _ = proof
    lines = path.read_text().split("\n")
    for number in (1, 2, 5, 12, len(lines) - 1):
        damaged = list(lines)
        line = damaged[number - 1]
        damaged[number - 1] = line[:-1] + ("1" if line[-1] != "1" else "2")
        path.write_text("\n".join(damaged))
        code, out, err = run(
            capsys, "--proof", str(path), "--account", "1", "--account-nonce", nonces[1].hex()
        )
        if number == 1:  # the height: the tree holds, the account's leaves no longer open
            assert code == 2, err
            continue
        named = re.search(r": line ([0-9]+(?: or [0-9]+)*):", err)
        assert code == 1 and named and str(number) in named.group(1).split(" or "), (number, err)
        assert out == ""
    path.write_text("\n".join(lines[:-3] + [""]))
    code, _, err = run(capsys, "--proof", str(path), "--account", "1", "--nonce", "00" * 32)
    assert code == 1 and "last row" in err


def test_bad_arguments_exit_1(proof, capsys) -> None:
    path, _, _ = proof
    assert run(capsys, "--proof", str(path), "--account", "1", "--nonce", "abc")[0] == 1
    missing = str(path.with_name("missing.csv"))
    assert run(capsys, "--proof", missing, "--account", "1", "--nonce", "00" * 32)[0] == 1
