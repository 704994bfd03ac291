"""The liabilities tree against an independent validator and a re-implementation of BitMEX's
validator's checks: every account found with its nonce and its sub-nonce, no other nonce finds
anything, totals add up, every flipped byte is detected, and BitMEX's own published sample
passes our checker."""

import secrets

import pytest

from perpetua.services.porl.proof import ProofError, check_tree, find_account, parse_proof
from perpetua.services.porl.tree import build_tree, leaf_count, render, split_parts, sub_nonce
from tests.services.porl import bitmex_checks, independent

HEIGHT = 871_234
BOOK = {0: 5_000_000, 1: 1, 2: 3_000, 7: 123_456_789, 42: 10**15, 1001: 2, 99: 0}


def nonces_for(book: dict[int, int]) -> dict[int, bytes]:
    return {account: secrets.token_bytes(32) for account in book}


@pytest.fixture
def proof() -> tuple[bytes, dict[int, bytes]]:
    nonces = nonces_for(BOOK)
    return render(build_tree(HEIGHT, BOOK, nonces)), nonces


def test_every_account_is_found_with_its_nonce_and_its_sub_nonce(proof) -> None:
    data, nonces = proof
    owed = {a: v for a, v in BOOK.items() if v}
    for account, amount in BOOK.items():
        key = sub_nonce(nonces[account], HEIGHT, account)
        assert independent.validate(data, account, account_nonce=nonces[account])[0] == amount
        assert independent.validate(data, account, nonce=key)[0] == amount
        text = data.decode()
        line = bitmex_checks.validate(text, account, nonce_hex=key.hex())
        assert line == (
            f"Validated {amount:,} in satoshis for account {account},"
            f" total liabilities {sum(owed.values()):,}"
        )
        assert (
            bitmex_checks.validate(text, account, account_nonce_hex=nonces[account].hex()) == line
        )
        tree = parse_proof(text)
        assert find_account(tree, account, key).total == amount
        assert find_account(tree, account, nonces[account], account_nonce=True).total == amount


def test_the_root_is_the_sum_and_the_shape_is_the_format(proof) -> None:
    data, _ = proof
    lines = data.decode().split("\n")
    assert lines[0] == f"block_height:{HEIGHT}" and lines[-1] == ""
    owed = [v for v in BOOK.values() if v]
    leaves = leaf_count(len(owed))
    assert leaves == 16 and len(lines) == 1 + 2 * leaves - 1 + 1
    total, root_total, _ = independent.validate(data, 0, nonce=bytes(32))
    assert total == 0 and root_total == sum(owed)
    # every account worth 2 or more is split: no leaf carries a whole liability above 1
    leaf_values = [int(line.split(",")[1]) for line in lines[-1 - leaves : -1]]
    assert sum(leaf_values) == sum(owed)
    assert not set(leaf_values) & {v for v in owed if v > 1}


def test_no_other_nonce_finds_anything(proof) -> None:
    data, nonces = proof
    for account in BOOK:
        assert independent.validate(data, account, account_nonce=secrets.token_bytes(32))[0] == 0
        # another account's nonce under this account's number, and the right nonce elsewhere
        other = nonces[42] if account != 42 else nonces[7]
        assert independent.validate(data, account, account_nonce=other)[0] == 0
        assert independent.validate(data, account + 10_000, account_nonce=nonces[account])[0] == 0


def test_the_split_differs_between_runs_and_the_totals_do_not() -> None:
    nonces = nonces_for(BOOK)
    first = render(build_tree(HEIGHT, BOOK, nonces))
    second = render(build_tree(HEIGHT, BOOK, nonces))
    assert first != second
    for account, amount in BOOK.items():
        for data in (first, second):
            assert independent.validate(data, account, account_nonce=nonces[account])[0] == amount


def test_parts_of_one_pad_with_zero_leaves() -> None:
    parts = split_parts({1: 1, 2: 1, 3: 1})
    assert len(parts) == 8 and sorted(v for _, v in parts) == [0] * 5 + [1] * 3
    nonces = nonces_for({1: 1, 2: 1, 3: 1})
    data = render(build_tree(5, {1: 1, 2: 1, 3: 1}, nonces))
    for account in (1, 2, 3):
        assert independent.validate(data, account, account_nonce=nonces[account])[0] == 1


def test_an_empty_book_is_a_valid_proof_of_zero() -> None:
    data = render(build_tree(9, {}, {}))
    assert independent.validate(data, 1, nonce=bytes(32))[1] == 0
    check_tree(parse_proof(data.decode()))


def _detected(data: bytes, nonces: dict[int, bytes], root: str) -> bool:
    """Whether the independent validator sees that ``data`` is not the published proof."""
    try:
        for account, amount in BOOK.items():
            total, _, digest = independent.validate(data, account, account_nonce=nonces[account])
            if total != amount or digest != root:
                return True
    except (independent.Invalid, UnicodeDecodeError, ValueError):
        return True
    return False


def test_a_flipped_byte_anywhere_is_detected(proof) -> None:
    data, nonces = proof
    root = independent.validate(data, 0, nonce=bytes(32))[2]
    for position in range(len(data)):
        for mask in (0x01, 0x20):
            damaged = bytearray(data)
            damaged[position] ^= mask
            assert _detected(bytes(damaged), nonces, root), (position, mask)


def test_the_checker_names_the_damaged_line(proof) -> None:
    data, nonces = proof
    text = data.decode()
    lines = text.split("\n")
    for number in range(2, len(lines)):  # file lines are 1-based; line 1 is the height
        line = lines[number - 1]
        for column in (3, len(line) - 1):
            damaged = list(lines)
            flipped = chr(ord(line[column]) ^ 0x01)
            damaged[number - 1] = line[:column] + flipped + line[column + 1 :]
            with pytest.raises(ProofError) as caught:
                check_tree(parse_proof("\n".join(damaged)))
            assert number in caught.value.lines, (number, column, caught.value)
            assert caught.value.lines[0] <= number


# BitMEX's published sample (README of BitMEX/proof-of-reserves-liabilities): account 2 with
# the account nonce below holds 3,000 satoshi of 4,000,004,000.
BITMEX_SAMPLE = """block_height:100
85b0a83970a74a6ad0ee5d4bec5d3afe0048d18b8342e31e2d3a45e0f17879c7,4000004000
4e6661db50e4ec1c42204c471c0a6fa2a8749127368f3358c340752208b160c9,963611993
128b3b2bd3f6bde35d5ac2ba0a37def53fad7a607e6cdd76ee4ad39472b44447,3036392007
448e972f7919df255c250b61d6ae1ea165f94cae229f3f610359ae0e2e63acb9,963610699
bfa7eddb8a0a00f8e1eda939c41eaba51f9555b32d45b6f5828bca3950eea31f,1294
51fb2bcf79c0439694c391960cfc0838db369b6fb2687c1fd4636476a2c34ca7,2039
9649f6034051c9c81e3d246ae90473da35a8c02b4321c1b61436b75da139cf53,3036389968
69c492be8d5b1f3cc507047460cabc116495e03fa6c76a7767655a94c2b9ae4f,963610032
acb9b9fb9ae63ae09927dac870fa203d0113dade58f20a9855193b121d3ed035,667
cbcdfae2f947e2b5b7dc2268f0f02f230867b77a0742940af16eff46f457a10e,0
003c7fc49a6a476894dd6edfca066d5e3fe01cc63906214134fb6e2ee06a7d83,1294
4c28a5dda0bb0dc42af1d942ea12b1f5fe1e3a22049de33166262c724363df63,333
2150701b63061ebffa09aa4a0fb239fd59143e6f7ba7cdec3714412d09b97db3,1706
f7c28544e2beb1abe170ca4d1aa177236f8e43383c2e83420bcbe8375aa4ba9b,1543636957
943f858e804d09d241b05c9d063030da551ca4bde5133b303c8f23a4b76a5fde,1492753011
"""
SAMPLE_NONCE = bytes.fromhex("b88860add96111d84d38a500266df715158f91375d9aaa98aa58356f9a872412")


def test_bitmex_published_sample_passes_every_checker() -> None:
    tree = parse_proof(BITMEX_SAMPLE)
    check_tree(tree)
    found = find_account(tree, 2, SAMPLE_NONCE, account_nonce=True)
    assert found.leaves == ((3, 1294), (5, 1706)) and found.total == 3000
    assert found.root_value == 4_000_004_000
    assert independent.validate(BITMEX_SAMPLE.encode(), 2, account_nonce=SAMPLE_NONCE)[0] == 3000
    assert bitmex_checks.validate(BITMEX_SAMPLE, 2, account_nonce_hex=SAMPLE_NONCE.hex()) == (
        "Validated 3,000 in satoshis for account 2, total liabilities 4,000,004,000"
    )


def _flip(line: str, column: int) -> str:
    return line[:column] + chr(ord(line[column]) ^ 0x01) + line[column + 1 :]


def test_with_several_damaged_lines_the_first_is_named(proof) -> None:
    """Rule 4 of services.porl.proof: the first damaged line in the file, whatever else is
    damaged below it, and whether the later damage parses or not."""
    data, _ = proof
    lines = data.decode().split("\n")  # line n of the file is lines[n - 1]
    last = len(lines) - 1  # the last leaf's line
    cases = [
        ({2: 3, last: 3}, 2),  # the root's digest and a leaf's
        ({3: 70, last - 3: 3}, 3),  # an inner node's value and a leaf's digest
        ({5: 3, last: "zz"}, 5),  # a changed digest, then a line that does not parse
        ({9: 3, 20: 3}, 9),  # a node above the leaves (lines 17-32 here) and a leaf
        ({4: 3, 9: 3}, 4),  # a node and, below it, a leaf of another branch
    ]
    for damage, first in cases:
        damaged = list(lines)
        for number, how in damage.items():
            line = damaged[number - 1]
            damaged[number - 1] = line + how if isinstance(how, str) else _flip(line, how)
        with pytest.raises(ProofError) as caught:
            check_tree(parse_proof("\n".join(damaged)))
        assert caught.value.lines == (first,), (damage, caught.value)
