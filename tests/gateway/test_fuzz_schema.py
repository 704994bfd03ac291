"""Property fuzz of the served spec (schemathesis): no request may cause a 5xx."""

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.gateway.harness import harness  # noqa: E402

EXAMPLES_PER_OPERATION = 8
FUZZED = ("/order", "/instrument", "/trade", "/orderBook/L2", "/quote", "/user", "/position",
          "/execution", "/funding", "/schema", "/settlement", "/liquidation", "/insurance")


def test_no_5xx_on_any_fuzzed_request() -> None:
    with harness() as h:
        document = h.client.get("/api/explorer/swagger.json").json()
        schema = schemathesis.openapi.from_dict(document).include(
            path_regex="^(" + "|".join(FUZZED) + ")")
        failures: list[str] = []
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) > 20

        def fuzz(operation: object) -> None:
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(operation.as_strategy())  # type: ignore[attr-defined]
            def check(case: object) -> None:
                kwargs = case.as_transport_kwargs(base_url="")  # type: ignore[attr-defined]
                response = h.client.request(kwargs["method"], "/api/v1" + case.formatted_path,
                                            params=kwargs.get("params"),
                                            headers={k: str(v) for k, v in
                                                     (kwargs.get("headers") or {}).items()},
                                            data=kwargs.get("data"), json=kwargs.get("json"))
                if response.status_code >= 500:
                    failures.append(f"{operation}: {response.status_code} {response.text}")

            check()

        for operation in operations:
            fuzz(operation)
        assert not failures, failures[:5]
