"""§5.1 signature vectors and the REST authentication rules."""

import time

import pytest

from perpetua.gateway.auth import expired_message, sign
from perpetua.gateway.ports import ApiKeyRecord
from tests.gateway.harness import harness

SECRET = "chNOOS4KvNXR_Xq4k4c9qsfoKWvnDecLATCRlcBwyKDYnWgO"
VECTORS = [
    (
        "GET",
        "/api/v1/instrument",
        "1518064236",
        "",
        "c7682d435d0cfe87c16098df34ef2eb5a549d4c5a3c2b1f0f77b8af73423bf00",
    ),
    (
        "GET",
        "/api/v1/instrument?filter=%7B%22symbol%22%3A+%22XBTM15%22%7D",
        "1518064237",
        "",
        "e2f422547eecb5b3cb29ade2127e21b858b235b386bfa45e1c1756eb3383919f",
    ),
    (
        "POST",
        "/api/v1/order",
        "1518064238",
        '{"symbol":"XBTM15","price":219.0,"clOrdID":"mm_bitmex_1a/oemUeQ4CAJZgP3fjHsA",'
        '"orderQty":98}',
        "1749cd2ccae4aa49048ae09f0b95110cee706e0944e6a14ad0b3a8cb45bd336b",
    ),
    (
        "GET",
        "/api/v1/instrument?filter=%7B%22symbol%22%3A+%22XBTM15%22%7D",
        "1429631577690",
        "",
        "9f1753e2db64711e39d111bc2ecace3dc9e7f026e6f65b65c4f53d3d14a60e5f",
    ),
]


@pytest.mark.parametrize(("verb", "path", "expires", "body", "expected"), VECTORS)
def test_signature_vectors(verb: str, path: str, expires: str, body: str, expected: str) -> None:
    assert sign(SECRET, verb, path, expires, body) == expected


def test_raw_query_is_signed_as_sent_and_public_routes_accept_signatures() -> None:
    with harness() as h:
        # '+' for a space, as Python's urlencode writes it: verified on the raw bytes
        response = h.signed("GET", "/instrument", params={"filter": '{"symbol": "XBTUSD"}'})
        assert response.status_code == 200
        assert [r["symbol"] for r in response.json()] == ["XBTUSD"]


def test_expired_request_gets_bitmex_text() -> None:
    with harness() as h:
        response = h.signed("GET", "/user/wallet", expires=int(time.time()) - 10)
        assert response.status_code == 400
        message = response.json()["error"]["message"]
        assert message.startswith(expired_message(0).rsplit(":", 1)[0])


def test_far_future_and_millisecond_expires_accepted() -> None:
    with harness() as h:
        assert h.signed("GET", "/user/wallet", expires=int(time.time() * 1000)).status_code == 200


def test_unknown_key_bad_signature_and_missing_auth() -> None:
    with harness() as h:
        unknown = ApiKeyRecord("nobody", 5, "x")
        response = h.signed("GET", "/user/wallet", key=unknown)
        assert response.status_code == 401
        assert response.json() == {"error": {"message": "Invalid API Key.", "name": "HTTPError"}}
        wrong = ApiKeyRecord("alice-key", 1001, "not-the-secret")
        response = h.signed("GET", "/user/wallet", key=wrong)
        assert response.status_code == 401
        assert "Signature not valid" in response.json()["error"]["message"]
        assert h.client.get("/api/v1/user/wallet").status_code == 401


def test_disabled_key_and_cidr() -> None:
    with harness() as h:
        off = h.accounts.add(ApiKeyRecord("off", 7, "s", ("order",), enabled=False))
        response = h.signed("GET", "/user/wallet", key=off)
        assert response.status_code == 403
        assert response.json()["error"]["message"] == "This key is disabled."
        fenced = h.accounts.add(ApiKeyRecord("fenced", 7, "s", ("order",), cidr=("10.0.0.0/8",)))
        assert h.signed("GET", "/user/wallet", key=fenced).status_code == 403
        open_ = h.accounts.add(ApiKeyRecord("open", 7, "s", ("order",), cidr=("0.0.0.0/0",)))
        assert h.signed("GET", "/user/wallet", key=open_).status_code == 200


def test_permissions() -> None:
    with harness() as h:
        order = {"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 1000}
        response = h.signed("POST", "/order", key=h.reader, body=order)
        assert response.status_code == 403
        assert response.json()["error"]["message"] == "Access Denied"
        cancel_only = h.accounts.add(ApiKeyRecord("cancel", 1001, "c", ("orderCancel",)))
        assert h.signed("POST", "/order", key=cancel_only, body=order).status_code == 403
        assert h.signed("DELETE", "/order/all", key=cancel_only).status_code == 200
        assert (
            h.signed(
                "POST", "/order/cancelAllAfter", key=cancel_only, body={"timeout": 0}
            ).status_code
            == 200
        )
        response = h.signed(
            "POST",
            "/user/requestWithdrawal",
            key=h.alice,
            body={"currency": "XBt", "network": "btc", "amount": 1},
        )
        assert response.status_code == 403
