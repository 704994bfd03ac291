"""Blockchains the wallets move coins on (docs/wallets.md).

``anvil``: a local Ethereum node (the npm package @foundry-rs/anvil, installed by ``make chain``)
started on a free port and stopped. ``rpc``: a small Ethereum JSON-RPC client. ``evm``: locally
signed transactions (eth-account), EIP-55 address checks, the ERC-20 calls and the deployment of
the committed, solc-compiled ``TetherUSD`` token (``make contracts`` rebuilds it from
chain/contracts/TetherUSD.sol). This package sits beside store and feeds: it knows chains, not
accounts; the wallets service maps chain movements to core commands.
"""
