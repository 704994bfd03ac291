"""A minimal Ethereum JSON-RPC client over HTTP (httpx), synchronous.

Errors are grouped by what the caller should do (style §17):
1. ``RpcUnavailable``: the node could not be reached or answered garbage: retry later.
2. ``RpcError``: the node answered with a JSON-RPC error (a rejected transaction, a bad
   argument): do not retry the same request blindly; ``code`` and ``message`` say why.

Quantities cross this boundary as ints (``quantity``/``to_quantity`` convert the hex strings);
everything else is passed through as the node's JSON. Each request has a timeout
(``REQUEST_TIMEOUT_S``); a batch holds at most ``BATCH_MAX`` calls.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import httpx

REQUEST_TIMEOUT_S = 10.0
BATCH_MAX = 1000


class RpcUnavailable(RuntimeError):
    """The node did not answer (connection refused, timeout, not JSON): retry."""


class RpcError(RuntimeError):
    """The node refused the call with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data


def quantity(value: Any) -> int:
    """An Ethereum hex quantity ("0x1a") as an int."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise RpcUnavailable(f"not a hex quantity: {value!r}")
    return int(value, 16)


def to_quantity(value: int) -> str:
    if value < 0:
        raise ValueError("quantities are non-negative")
    return hex(value)


class JsonRpc:
    """One node's endpoint. Thread-safe as httpx.Client is; close() when done."""

    def __init__(self, url: str, *, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout_s)
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._client.close()

    def call(self, method: str, *params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        return _result(self._post(body))

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several calls in one request; results in the calls' order. Any error raises."""
        if len(calls) > BATCH_MAX:
            raise ValueError(f"a batch holds at most {BATCH_MAX} calls")
        if not calls:
            return []
        first = next(self._ids)
        body = [
            {"jsonrpc": "2.0", "id": first + i, "method": m, "params": list(p)}
            for i, (m, p) in enumerate(calls)
        ]
        for _ in range(len(calls) - 1):
            next(self._ids)
        answer = self._post(body)
        if not isinstance(answer, list) or len(answer) != len(calls):
            raise RpcUnavailable(f"batch answer of the wrong shape: {str(answer)[:200]}")
        by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
        return [_result(by_id.get(first + i)) for i in range(len(calls))]

    def _post(self, body: Any) -> Any:
        try:
            response = self._client.post(self.url, json=body)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RpcUnavailable(f"{self.url}: {exc}") from exc

    # The calls the wallets use, typed.
    def chain_id(self) -> int:
        return quantity(self.call("eth_chainId"))

    def block_number(self) -> int:
        return quantity(self.call("eth_blockNumber"))

    def balance(self, address: str, block: str = "latest") -> int:
        return quantity(self.call("eth_getBalance", address, block))

    def nonce(self, address: str, block: str = "pending") -> int:
        return quantity(self.call("eth_getTransactionCount", address, block))

    def gas_price(self) -> int:
        return quantity(self.call("eth_gasPrice"))

    def block(self, number: int, *, full: bool = True) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.call("eth_getBlockByNumber", to_quantity(number), full)
        return found

    def send_raw(self, raw_hex: str) -> str:
        tx_hash: str = self.call("eth_sendRawTransaction", raw_hex)
        return tx_hash

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.call("eth_getTransactionReceipt", tx_hash)
        return found

    def transaction(self, tx_hash: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.call("eth_getTransactionByHash", tx_hash)
        return found

    def logs(
        self, from_block: int, to_block: int, address: str, topics: list[Any]
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call(
            "eth_getLogs",
            {
                "fromBlock": to_quantity(from_block),
                "toBlock": to_quantity(to_block),
                "address": address,
                "topics": topics,
            },
        )
        return found

    def eth_call(self, to: str, data: str) -> str:
        found: str = self.call("eth_call", {"to": to, "data": data}, "latest")
        return found


def _result(item: Any) -> Any:
    if not isinstance(item, dict):
        raise RpcUnavailable(f"not a JSON-RPC answer: {str(item)[:200]}")
    error = item.get("error")
    if error is not None:
        raise RpcError(int(error.get("code", 0)), str(error.get("message", "")), error.get("data"))
    if "result" not in item:
        raise RpcUnavailable(f"JSON-RPC answer without a result: {str(item)[:200]}")
    return item["result"]
