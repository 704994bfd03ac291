"""Blockchains the wallets move coins on (docs/wallets.md).

``anvil``: a local Ethereum node (the npm package @foundry-rs/anvil, installed by ``make chain``)
started on a free port and stopped. ``rpc``: a small Ethereum JSON-RPC client. ``evm``: locally
signed transactions (eth-account), EIP-55 address checks, the ERC-20 calls and the deployment of
the committed, solc-compiled ``TetherUSD`` token (``make contracts`` rebuilds it from
chain/contracts/TetherUSD.sol). This package sits beside store and feeds: it knows chains, not
accounts; the wallets service maps chain movements to core commands.
"""

import sys as _sys

# eth-account imports py_ecc, which raises the interpreter's recursion limit to 100,000 at
# import; msgspec then walks deeply nested JSON until the C stack overflows (a segfault instead
# of the gateway's 400). Import it here, once, and put the limit back.
_limit = _sys.getrecursionlimit()
import eth_account as _eth_account  # noqa: E402, F401

_sys.setrecursionlimit(_limit)
