"""Terminal jobs for tests that stop a process the way a terminal's Ctrl-C does (SIGINT to its
whole process group) and then check that none of its children (anvil, hash workers) is left:
the children run in process groups of their own, but stay in the job's session."""

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ctrl_c", "foreground_job", "session_members"]

SRC = Path(__file__).resolve().parents[2] / "src"


@contextlib.contextmanager
def foreground_job(script: str) -> Iterator["subprocess.Popen[str]"]:
    """``python -c script`` (``src`` on its path) in a session and process group of its own,
    as a terminal's foreground job; killed on leaving if it still runs."""
    job = subprocess.Popen(
        [sys.executable, "-c", script],
        env=dict(os.environ, PYTHONPATH=str(SRC)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield job
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()


def ctrl_c(job: "subprocess.Popen[str]", timeout_s: float) -> tuple[str, str]:
    """What a terminal's Ctrl-C does (SIGINT to the job's process group); the job's (stdout,
    stderr) once it ended, within ``timeout_s``."""
    os.killpg(job.pid, signal.SIGINT)
    return job.communicate(timeout=timeout_s)


def session_members(sid: int) -> list[str]:
    """The command lines of the live (not zombie) processes in session ``sid`` (Linux /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone while we looked
            continue
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            members.append(command.strip())
    return members
