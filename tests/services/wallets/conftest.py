from tests.chain.fixtures import anvil, anvil_rpc, usdt  # noqa: F401
from tests.services.wallets.rig import rig  # noqa: F401
