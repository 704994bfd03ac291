"""The processes of a session, for tests that stop a venue the way a terminal does (SIGINT to
its process group) and then check that none of its children (anvil, hash workers) is left:
the children run in process groups of their own, but stay in the venue's session."""

from pathlib import Path

__all__ = ["session_members"]


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
