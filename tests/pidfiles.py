"""Signal a process named by a pidfile an earlier run left behind, only when it is still ours.

A run killed with SIGKILL leaves its daemons' pidfiles. By the next run the pid may belong to
another process: on the shared project machine a stale test-daemon pidfile once named the main
dockerd, and the test "stopping its old daemon" took every other test's engine down. So the
process is signalled only when its command line names the directory the pidfile belongs to.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def owned_pid(pidfile: Path, marker: str) -> int | None:
    """The pid in `pidfile` when that process is alive and its command line contains `marker`."""
    try:
        pid = int(pidfile.read_text().split()[0])
        argv = (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    if state in ("Z", "X") or marker not in argv:
        return None
    return pid


def signal_owned(pidfile: Path, marker: str, sig: int = signal.SIGTERM) -> int | None:
    """Send `sig` to the process `owned_pid` finds; its pid, or None when nothing was ours."""
    pid = owned_pid(pidfile, marker)
    if pid is not None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return None
    return pid
