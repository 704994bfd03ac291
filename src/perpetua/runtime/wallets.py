"""``open_wallets``: the wallets of a venue from ``[wallets]`` (``WalletsConfig``).

- ``chain = "none"``: no wallets (deposit and withdrawal routes answer that the venue has none).
- ``chain = "local"`` (the demo's default): anvil from chain/node_modules is started on a free
  port with its state in ``<data dir>/chain/anvil-state.json`` (dumped every
  ``STATE_INTERVAL_S`` and at stop, loaded at start), so the local chain outlives restarts.
  The committed TetherUSD is deployed from anvil's public dev account the first time (its
  address kept in ``<data dir>/chain/usdt-address``); the deposit seed is made once in
  ``<data dir>/secrets/deposit-seed`` and only its xpub reaches the watcher; the hot wallet's
  key is made once into an encrypted keystore and funded with 1,000 ETH and 10,000,000 USDT; the
  cold address is the address of a key that is made and thrown away at once, so the server
  can never spend from it. The sweeper (the only holder of the deposit seed) moves credited
  deposits to the hot wallet and the hot wallet's excess over ``hot_max_usdt`` /
  ``hot_max_eth`` to the cold address.
- ``chain = "rpc"``: the operator's node at ``rpc_url``; ``token_address``, ``eth_xpub`` and the
  hot keystore are the operator's (the keystore's password in ``$PERPETUA_WALLET_PASSWORD`` or
  ``<data dir>/secrets/hot-wallet.password``); the deposit seed stays with the operator, so
  this server does not sweep.
``ChainSetup.close()`` stops what ``open_wallets`` started (anvil by its pid).

Cluster mode (``chain = "rpc"`` only: one chain for every process) splits them in two:
``gateway_wallets`` is what a gateway's routes need (networks, deposit addresses from the xpub,
the address book, withdrawal requests), with no key at all: a gateway faces the internet and
never signs; the leading sequencer runs ``open_wallets`` (the hot key, the watcher, the signer,
the sweeps) and its jobs (`cluster_leader`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, delete

from perpetua.chain import evm
from perpetua.chain.adapter import DepositWatcher, WithdrawalSigner
from perpetua.chain.anvil import DEV_FUNDER_ADDRESS, DEV_FUNDER_KEY, AnvilNode, start_anvil
from perpetua.chain.bitcoin import BitcoinSigner, BitcoinWatcher
from perpetua.chain.ethereum import EthereumSigner, EthereumSweeper, EthereumWatcher
from perpetua.chain.evm import Account
from perpetua.chain.keys import (
    eth_account_xpub,
    eth_private_key,
    load_keystore,
    new_mnemonic,
    save_keystore,
    secret_file,
)
from perpetua.chain.rpc import JsonRpc
from perpetua.runtime.config import WalletsConfig
from perpetua.services.wallets import DefaultPolicy, Wallets, WithdrawalPolicy, default_networks
from perpetua.services.wallets.networks import Network, bitcoin_network
from perpetua.services.wallets.ports import Submit, Verifier
from perpetua.store.schema import chain_blocks, chain_cursors

__all__ = ["NETWORK", "PASSWORD_ENV", "ChainSetup", "gateway_wallets", "open_wallets"]

log = logging.getLogger("perpetua.wallets")

PASSWORD_ENV = "PERPETUA_WALLET_PASSWORD"
STATE_INTERVAL_S = 5
HOT_FUNDING_WEI = 1_000 * 10**18
HOT_FUNDING_USDT = 10_000_000 * 10**6
NETWORK = "eth"


@dataclass
class ChainSetup:
    wallets: Wallets
    rpc: JsonRpc
    node: AnvilNode | None
    token: str
    # for Proof of Reserves (services.porl.wallet_reserves): the hot key signs its address, the
    # deposit seed (local chain only; an operator's xpub comes without it) signs deposit ones
    hot_key: str = field(default="", repr=False)
    deposit_mnemonic: str | None = field(default=None, repr=False)
    cold_address: str = ""
    currencies: tuple[str, ...] = ()

    btc_rpc: JsonRpc | None = None

    def close(self) -> None:
        self.rpc.close()
        if self.btc_rpc is not None:
            self.btc_rpc.close()
        if self.node is not None:
            self.node.stop()


def _password(secrets_dir: Path, make: bool) -> str:
    return os.environ.get(PASSWORD_ENV) or secret_file(secrets_dir / "hot-wallet.password", make)


def _local_chain(chain_dir: Path, config: WalletsConfig) -> tuple[AnvilNode, JsonRpc]:
    chain_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    node = start_anvil(
        block_time_s=config.block_time_s,
        extra_args=(
            "--state", str(chain_dir / "anvil-state.json"),
            "--state-interval", str(STATE_INTERVAL_S),
        ),
    )  # fmt: skip
    return node, JsonRpc(node.url)


def _local_token(rpc: JsonRpc, chain_dir: Path, engine: Engine) -> str:
    path = chain_dir / "usdt-address"
    if path.exists():
        token = path.read_text().strip()
        if rpc.call("eth_getCode", token, "latest") not in ("0x", "0x0", None):
            return token
    token = evm.deploy(rpc, DEV_FUNDER_KEY)
    path.write_text(token + "\n")
    with engine.begin() as conn:  # a new chain: the follower starts again from its head
        conn.execute(delete(chain_blocks).where(chain_blocks.c.network == NETWORK))
        conn.execute(delete(chain_cursors).where(chain_cursors.c.network == NETWORK))
    log.info("deployed TetherUSD at %s on the local chain", token)
    return token


def _local_keys(
    rpc: JsonRpc, token: str, secrets_dir: Path, chain_dir: Path
) -> tuple[str, str, str, str]:
    """(mnemonic, xpub, hot key, cold address) for the local chain, made once (module
    docstring). Only the sweeper gets the mnemonic; the watcher gets the xpub."""
    secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    seed_path = secrets_dir / "deposit-seed"
    if not seed_path.exists():
        fd = os.open(seed_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(new_mnemonic() + "\n")
    mnemonic = seed_path.read_text().strip()
    keystore = secrets_dir / "hot-wallet.json"
    password = _password(secrets_dir, make=True)
    if not keystore.exists():
        save_keystore(keystore, "0x" + bytes(Account.create().key).hex(), password)
    hot_key = load_keystore(keystore, password)
    hot = evm.checksum(Account.from_key(hot_key).address)
    if rpc.balance(hot) == 0:
        signed = evm.sign_transfer(
            DEV_FUNDER_KEY, chain_id=rpc.chain_id(), nonce=rpc.nonce(DEV_FUNDER_ADDRESS), to=hot,
            amount=HOT_FUNDING_WEI, token=None, fee_wei=evm.max_fee(rpc),
        )  # fmt: skip
        evm.send_and_wait(rpc, signed)
    if evm.token_balance(rpc, token, hot) == 0:
        evm.mint(rpc, DEV_FUNDER_KEY, token, hot, HOT_FUNDING_USDT)
    cold_path = chain_dir / "cold-address"
    if not cold_path.exists():
        cold_path.write_text(evm.checksum(Account.create().address) + "\n")  # key discarded
    return mnemonic, eth_account_xpub(mnemonic), hot_key, cold_path.read_text().strip()


def _bitcoin(
    config: WalletsConfig,
    networks: dict[str, Network],
    watchers: dict[str, DepositWatcher],
    signers: dict[str, WithdrawalSigner],
) -> JsonRpc | None:
    """Network ``btc`` on the operator's Bitcoin Core, when ``btc_rpc_url`` is set."""
    if not config.btc_rpc_url:
        return None
    if not config.btc_xpub:
        raise ValueError("wallets.btc_xpub is required with wallets.btc_rpc_url")
    btc = JsonRpc(config.btc_rpc_url)
    network = bitcoin_network(config.btc_confirmations)
    asset = network.assets["XBt"].asset
    networks["btc"] = network
    watchers["btc"] = BitcoinWatcher("btc", btc.call, config.btc_xpub, asset, config.btc_chain)
    if config.btc_hot_address:
        signers["btc"] = BitcoinSigner("btc", btc.call, config.btc_hot_address, asset)
    return btc


def open_wallets(
    config: WalletsConfig,
    data_dir: Path,
    engine: Engine,
    submit: Submit,
    verifier: Verifier,
    policy: WithdrawalPolicy | None = None,
    recover_after_ns: int | None = None,
) -> ChainSetup | None:
    """``recover_after_ns``: `Wallets`' (cluster mode; None: recover once at start)."""
    if config.chain == "none":
        return None
    chain_dir = data_dir / "chain"
    secrets_dir = data_dir / "secrets"
    node: AnvilNode | None = None
    if config.chain == "local":
        node, rpc = _local_chain(chain_dir, config)
    else:
        rpc = JsonRpc(config.rpc_url)
    try:
        if config.chain == "local":
            token = config.token_address or _local_token(rpc, chain_dir, engine)
            mnemonic, xpub, hot_key, cold = _local_keys(rpc, token, secrets_dir, chain_dir)
        else:
            mnemonic = ""  # the operator's seed stays offline: no sweeps from this server
            token = evm.checksum(config.token_address) if config.token_address else ""
            xpub = config.eth_xpub
            keystore = Path(config.hot_keystore or secrets_dir / "hot-wallet.json")
            hot_key = load_keystore(keystore, _password(secrets_dir, make=False))
            cold = config.cold_address
        xpub = config.eth_xpub or xpub
        cold = config.cold_address or cold
        networks = default_networks(
            token or None, confirmations=config.confirmations, approval_usdt=config.approval_usdt
        )
        assets = {c: r.asset for c, r in networks[NETWORK].assets.items()}
        sweepers = {}
        if mnemonic and cold and not config.eth_xpub:
            sweepers[NETWORK] = EthereumSweeper(
                rpc, hot_key, lambda index: eth_private_key(mnemonic, index), assets, cold,
                hot_max={"USDt": config.hot_max_usdt * 10**6, "Gwei": config.hot_max_eth * 10**9},
                sweep_min={c: r.deposit_min for c, r in networks[NETWORK].assets.items()},
            )  # fmt: skip
        watchers: dict[str, DepositWatcher] = {NETWORK: EthereumWatcher(NETWORK, rpc, xpub, assets)}
        signers: dict[str, WithdrawalSigner] = {
            NETWORK: EthereumSigner(NETWORK, rpc, hot_key, assets)
        }
        btc_rpc = _bitcoin(config, networks, watchers, signers)
        wallets = Wallets(
            engine,
            networks,
            watchers,
            signers,
            verifier,
            submit,
            policy or DefaultPolicy(config.blocked_addresses),
            cold_addresses={NETWORK: cold} if cold else None,
            sweepers=sweepers,
            recover_after_ns=recover_after_ns,
        )
    except BaseException:
        rpc.close()
        if node is not None:
            node.stop()
        raise
    return ChainSetup(
        wallets, rpc, node, token, btc_rpc=btc_rpc,
        hot_key=hot_key, deposit_mnemonic=mnemonic or None, cold_address=cold or "",
        currencies=tuple(networks[NETWORK].assets),
    )  # fmt: skip


def gateway_wallets(
    config: WalletsConfig,
    engine: Engine,
    submit: Submit,
    verifier: Verifier,
    policy: WithdrawalPolicy | None = None,
) -> ChainSetup | None:
    """A cluster gateway's wallets (module docstring): no signer, no sweeper, no key; its
    ``jobs`` must not run (the leading sequencer runs the real ones)."""
    if config.chain == "none":
        return None
    if config.chain != "rpc":
        raise ValueError('cluster mode: wallets.chain must be "rpc" (one chain for every process)')
    rpc = JsonRpc(config.rpc_url)
    try:
        token = evm.checksum(config.token_address) if config.token_address else ""
        networks = default_networks(
            token or None, confirmations=config.confirmations, approval_usdt=config.approval_usdt
        )
        assets = {c: r.asset for c, r in networks[NETWORK].assets.items()}
        watchers: dict[str, DepositWatcher] = {
            NETWORK: EthereumWatcher(NETWORK, rpc, config.eth_xpub, assets)
        }
        btc_rpc = _bitcoin(config, networks, watchers, {})
        wallets = Wallets(
            engine, networks, watchers, {}, verifier, submit,
            policy or DefaultPolicy(config.blocked_addresses),
            cold_addresses={NETWORK: config.cold_address} if config.cold_address else None,
        )  # fmt: skip
    except BaseException:
        rpc.close()
        raise
    return ChainSetup(
        wallets, rpc, None, token, btc_rpc=btc_rpc, cold_address=config.cold_address,
        currencies=tuple(networks[NETWORK].assets),
    )  # fmt: skip
