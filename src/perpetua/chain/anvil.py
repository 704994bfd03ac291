"""A local Ethereum node: starts the anvil binary from the repo's npm folder and stops it.

Invariants:
1. The node binds 127.0.0.1 on a port the kernel chooses (``--port 0``); the port is read back
   from anvil's own "Listening on" line, so two nodes never race for a port.
2. anvil's output goes to a log file, never to a pipe nobody reads (a full pipe would stall it).
3. ``stop()`` ends only the process this object started, by its pid: SIGTERM, then SIGKILL after
   ``STOP_GRACE_S``. It is idempotent and also runs from ``__exit__``.
4. On Linux the node dies with the thread that started it (``PR_SET_PDEATHSIG``): a venue
   killed with SIGKILL leaves no anvil behind. Start it from a long-lived thread (the main one).
5. The binary comes from, in order: an explicit path, ``$PERPETUA_ANVIL``, the platform package
   under ``chain/node_modules/@foundry-rs/`` (``make chain`` installs it from the lock file),
   ``anvil`` on PATH. None found is ``AnvilMissing``, which says how to install it.
6. The node runs in a process group of its own: a terminal's Ctrl-C (SIGINT to the foreground
   process group) reaches the venue, never the node, so the node stops only by ``stop()``,
   after the venue has stopped what uses it (its wallet jobs). In the venue's group it died
   with the Ctrl-C while those jobs still ran, and they failed against a closed port.

The node is anvil's development chain: chain id 31337 and ten accounts funded from the public
test mnemonic ``DEV_MNEMONIC`` (their keys are public; use them only on this local chain).
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parents[3]
NODE_MODULES = REPO_ROOT / "chain" / "node_modules" / "@foundry-rs"
START_TIMEOUT_S = 20.0
STOP_GRACE_S = 5.0
POLL_INTERVAL_S = 0.02
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_CHAIN_ID = 31337
# The first account of DEV_MNEMONIC (m/44'/60'/0'/0/0): anvil funds it with 10,000 ETH. Public.
DEV_FUNDER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV_FUNDER_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
_LISTENING = re.compile(r"Listening on ([0-9.]+):(\d+)")


class AnvilMissing(RuntimeError):
    """No anvil binary: install it with `make chain` (npm ci in chain/)."""


class AnvilFailed(RuntimeError):
    """anvil exited or did not listen within START_TIMEOUT_S; the message holds its log tail."""


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the starting thread dies (invariant 4)."""
    if platform.system() == "Linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _platform_package() -> str:
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(platform.system(), "")
    machine = {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine(), ""
    )
    return f"anvil-{system}-{machine}"


def find_anvil(explicit: str | None = None) -> Path:
    """The anvil binary by invariant 5's order."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    env = os.environ.get("PERPETUA_ANVIL")
    if env:
        candidates.append(Path(env))
    candidates.append(NODE_MODULES / _platform_package() / "bin" / "anvil")
    on_path = shutil.which("anvil")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise AnvilMissing(
        "anvil not found: run `make chain` (npm ci in chain/ installs @foundry-rs/anvil), "
        "or set PERPETUA_ANVIL to the binary"
    )


def anvil_available(explicit: str | None = None) -> bool:
    try:
        find_anvil(explicit)
    except AnvilMissing:
        return False
    return True


@dataclass
class AnvilNode:
    """A running anvil process (``start_anvil`` makes one)."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path
    chain_id: int
    _workdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_GRACE_S)
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> AnvilNode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_anvil(
    binary: str | None = None,
    *,
    chain_id: int = DEV_CHAIN_ID,
    block_time_s: int | None = None,
    accounts: int = 10,
    extra_args: tuple[str, ...] = (),
) -> AnvilNode:
    """Starts anvil on 127.0.0.1 and a free port; returns once it listens.

    ``block_time_s`` None means anvil mines a block per transaction (automine), which tests use;
    the demo passes a block time so confirmations advance on their own.
    """
    path = find_anvil(binary)
    workdir = tempfile.TemporaryDirectory(prefix="perpetua-anvil-")
    log_path = Path(workdir.name) / "anvil.log"
    args = [
        str(path),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--chain-id",
        str(chain_id),
        "--accounts",
        str(accounts),
        "--mnemonic",
        DEV_MNEMONIC,
    ]
    if block_time_s is not None:
        args += ["--block-time", str(block_time_s)]
    args += list(extra_args)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # only prctl runs in the child before exec
            process_group=0,  # invariant 6
        )
    node = AnvilNode(process, "127.0.0.1", 0, log_path, chain_id, workdir)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        match = _LISTENING.search(text)
        if match:
            node.host, node.port = match.group(1), int(match.group(2))
            return node
        if process.poll() is not None:
            break
        time.sleep(POLL_INTERVAL_S)
    tail = log_path.read_text(errors="replace")[-2000:]
    node.stop()
    raise AnvilFailed(f"anvil did not start (exit {process.returncode}): {tail}")
