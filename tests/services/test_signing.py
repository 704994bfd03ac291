"""Signature test vectors from BitMEX's API key documentation (reference §5.1)."""

import pytest

from perpetua.services.signing import signature, signature_matches

SECRET = "chNOOS4KvNXR_Xq4k4c9qsfoKWvnDecLATCRlcBwyKDYnWgO"
FILTER_PATH = "/api/v1/instrument?filter=%7B%22symbol%22%3A+%22XBTM15%22%7D"
ORDER_BODY = (
    '{"symbol":"XBTM15","price":219.0,"clOrdID":"mm_bitmex_1a/oemUeQ4CAJZgP3fjHsA","orderQty":98}'
)

VECTORS = [
    (
        "GET",
        "/api/v1/instrument",
        1518064236,
        "",
        "c7682d435d0cfe87c16098df34ef2eb5a549d4c5a3c2b1f0f77b8af73423bf00",
    ),
    (
        "GET",
        FILTER_PATH,
        1518064237,
        "",
        "e2f422547eecb5b3cb29ade2127e21b858b235b386bfa45e1c1756eb3383919f",
    ),
    (
        "POST",
        "/api/v1/order",
        1518064238,
        ORDER_BODY,
        "1749cd2ccae4aa49048ae09f0b95110cee706e0944e6a14ad0b3a8cb45bd336b",
    ),
    (
        "GET",
        FILTER_PATH,
        1429631577690,
        "",  # legacy nonce
        "9f1753e2db64711e39d111bc2ecace3dc9e7f026e6f65b65c4f53d3d14a60e5f",
    ),
]


@pytest.mark.parametrize(("verb", "path", "expires", "body", "expected"), VECTORS)
def test_documented_vectors(verb: str, path: str, expires: int, body: str, expected: str) -> None:
    assert signature(SECRET, verb, path, expires, body) == expected
    assert signature(SECRET, verb.lower(), path, str(expires), body.encode()) == expected
    assert signature_matches(SECRET, verb, path, expires, body, expected.upper())


def test_any_change_breaks_the_signature() -> None:
    verb, path, expires, body, expected = VECTORS[2]
    assert not signature_matches(SECRET, verb, path, expires + 1, body, expected)
    assert not signature_matches(SECRET, verb, path, expires, body + " ", expected)
    assert not signature_matches(SECRET[:-1] + "x", verb, path, expires, body, expected)
