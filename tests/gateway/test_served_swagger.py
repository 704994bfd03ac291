"""The served API document lists exactly what the gateway serves: every operation in it answers
something other than BitMEX's 404, and every route the gateway dispatches is in it (ours under
their own tags)."""

from typing import Any

from perpetua.gateway.explorer import API_BASE_PATH, base_swagger
from tests.gateway.harness import harness

NOT_FOUND = "Not Found"


def test_document_and_routes_agree() -> None:
    with harness() as h:
        document: dict[str, Any] = h.client.get("/api/explorer/swagger.json").json()
        served = h.client.app.endpoints  # type: ignore[attr-defined]
        listed = {
            (API_BASE_PATH + path, verb.upper())
            for path, ops in document["paths"].items()
            for verb in ops
        }
        dispatched = {(path, verb) for path, verbs in served.items() for verb in verbs}
        assert listed == dispatched
        # BitMEX operations we do not serve are not offered
        bitmex = {
            (API_BASE_PATH + path, verb.upper())
            for path, ops in base_swagger()["paths"].items()
            for verb in ops
        }
        assert bitmex - listed, "expected some BitMEX operations to be left out"
        for path, verb in sorted(bitmex - listed)[:20]:
            response = h.client.request(verb, path)
            assert response.status_code in (404, 405), (path, verb, response.status_code)
        tags = {t["name"] for t in document["tags"]}
        used = {
            tag for ops in document["paths"].values() for op in ops.values() for tag in op["tags"]
        }
        assert used <= tags


def test_every_listed_operation_is_routed() -> None:
    with harness() as h:
        document = h.client.get("/api/explorer/swagger.json").json()
        for path, ops in document["paths"].items():
            for verb in ops:
                if "{" in path:
                    continue
                response = h.client.request(verb.upper(), API_BASE_PATH + path)
                body = response.json() if response.content else {}
                message = body.get("error", {}).get("message") if isinstance(body, dict) else None
                assert not (response.status_code == 404 and message == NOT_FOUND), (verb, path)


def test_routes_of_services_the_venue_lacks_are_neither_listed_nor_served() -> None:
    """The harness is built without bots, copy trading, convert and on-ramp: their operations
    would only fail (they answered 503 before), so they are absent, as BitMEX's unserved ones."""
    absent = (
        ("/bot", "GET"),
        ("/bot/backtest", "POST"),
        ("/leaderboard", "GET"),
        ("/copy/follow", "POST"),
        ("/convert/quote", "POST"),
        ("/onramp/bank/order", "POST"),
    )
    with harness() as h:
        paths = h.client.get("/api/explorer/swagger.json").json()["paths"]
        for path, verb in absent:
            assert verb.lower() not in paths.get(path, {}), (verb, path)
            response = h.client.request(verb, API_BASE_PATH + path)
            assert response.status_code == 404, (verb, path, response.status_code)
            assert response.json()["error"]["message"] == NOT_FOUND
