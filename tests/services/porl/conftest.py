from tests.chain.fixtures import anvil, anvil_rpc, usdt  # noqa: F401
