"""Keys: deposit addresses from an extended public key, and the hot wallet's encrypted keystore.

1. The watching side gets only an account-level extended *public* key (BIP-44
   m/44'/60'/0' for Ethereum, BIP-84 m/84'/0'/0' for Bitcoin); it derives the receive address
   ``0/index`` for each exchange account (index = account id). It cannot sign.
2. The seed that made that public key stays with the operator (or, for the local demo chain,
   in ``<data dir>/secrets/deposit-seed``, 0600, used only by the sweeper).
3. The hot wallet's key lives in an eth-account keystore (scrypt, AES-128-CTR) under a password
   from the environment or a 0600 file; it is decrypted once, at start.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from bip_utils import (
    Bip39MnemonicGenerator,
    Bip39SeedGenerator,
    Bip39WordsNum,
    Bip44,
    Bip44Changes,
    Bip44Coins,
    Bip84,
    Bip84Coins,
)
from eth_account import Account

__all__ = [
    "btc_receive_address",
    "eth_account_xpub",
    "eth_private_key",
    "eth_receive_address",
    "load_keystore",
    "new_mnemonic",
    "save_keystore",
]

DERIVATION_INDEX_MAX = 2**31 - 1  # non-hardened child indexes


def new_mnemonic() -> str:
    return str(Bip39MnemonicGenerator().FromWordsNumber(Bip39WordsNum.WORDS_NUM_24))


def eth_account_xpub(mnemonic: str) -> str:
    """The account-level extended public key m/44'/60'/0' of a BIP-39 mnemonic."""
    seed = Bip39SeedGenerator(mnemonic).Generate()
    account = Bip44.FromSeed(seed, Bip44Coins.ETHEREUM).Purpose().Coin().Account(0)
    return str(account.PublicKey().ToExtended())


def eth_receive_address(xpub: str, index: int) -> str:
    """m/44'/60'/0'/0/index from the account xpub alone (1); EIP-55 checksummed."""
    if not 0 <= index <= DERIVATION_INDEX_MAX:
        raise ValueError(f"derivation index out of range: {index}")
    node = Bip44.FromExtendedKey(xpub, Bip44Coins.ETHEREUM)
    return str(node.Change(Bip44Changes.CHAIN_EXT).AddressIndex(index).PublicKey().ToAddress())


def eth_private_key(mnemonic: str, index: int) -> str:
    """The sweeper's key for deposit address ``index`` (2): never on the watching side."""
    seed = Bip39SeedGenerator(mnemonic).Generate()
    node = Bip44.FromSeed(seed, Bip44Coins.ETHEREUM).Purpose().Coin().Account(0)
    key = node.Change(Bip44Changes.CHAIN_EXT).AddressIndex(index).PrivateKey().Raw().ToHex()
    return "0x" + str(key)


def btc_receive_address(xpub: str, index: int, *, regtest: bool = False) -> str:
    """BIP-84 (native segwit, bech32) receive address 0/index from an account-level x/z/vpub."""
    if not 0 <= index <= DERIVATION_INDEX_MAX:
        raise ValueError(f"derivation index out of range: {index}")
    coin = Bip84Coins.BITCOIN_REGTEST if regtest else Bip84Coins.BITCOIN
    node = Bip84.FromExtendedKey(xpub, coin)
    return str(node.Change(Bip44Changes.CHAIN_EXT).AddressIndex(index).PublicKey().ToAddress())


def save_keystore(path: Path, private_key: str, password: str) -> str:
    """Encrypts ``private_key`` to ``path`` (0600); returns its address."""
    keystore = Account.encrypt(bytes.fromhex(private_key.removeprefix("0x")), password)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(keystore, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    return str(Account.from_key(private_key).address)


def load_keystore(path: Path, password: str) -> str:
    """The private key (hex) in the keystore at ``path``."""
    keystore = json.loads(path.read_text())
    return "0x" + bytes(Account.decrypt(keystore, password)).hex()


def secret_file(path: Path, make: bool = True) -> str:
    """A secret kept in a 0600 file (a keystore password, the demo's deposit seed), made with
    ``make`` the first time."""
    if not path.exists():
        if not make:
            raise FileNotFoundError(path)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()
