"""Proof of Reserves and Liabilities in BitMEX's published format (docs/proof-of-reserves.md).

Modules: `tree` (the blinded Merkle sum tree: sub-nonces, splitting, shuffling, the file),
`proof` (reading and checking a published file: what ``perpetua verify-liabilities`` runs),
`nonces` (each account's lifetime nonce, encrypted with the server key), `reserves` (addresses,
balances at a block, EIP-191 signatures, their check), `publication` (the atomic,
write-once directory of published snapshots) and `service` (the snapshot the venue takes on
demand and daily).
"""
