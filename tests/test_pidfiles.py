"""A stale pidfile never takes down a process that is not the one it was written for."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import until
from tests.pidfiles import owned_pid, signal_owned


def _exec_done(pid: int, word: str) -> bool:
    """True once `pid` shows its new command line: Popen returns after a vfork child's execve has
    released the parent's memory, a moment before the kernel sets the new argv (read as empty)."""
    return word.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_a_reused_pid_is_left_alone_and_our_process_is_stopped(tmp_path: Path) -> None:
    marker = str(tmp_path / "daemon-root")
    other = subprocess.Popen(["sleep", "30"])  # stands for the process that reused the pid
    ours = subprocess.Popen(["sh", "-c", 'sleep 30; : "$0"', marker])
    try:
        until(lambda: _exec_done(other.pid, "sleep") and _exec_done(ours.pid, marker), 10, "exec")
        pidfile = tmp_path / "docker.pid"
        pidfile.write_text(f"{other.pid}\n")
        assert owned_pid(pidfile, marker) is None
        assert signal_owned(pidfile, marker) is None
        assert other.poll() is None  # still running
        pidfile.write_text(f"{ours.pid}\n")
        assert signal_owned(pidfile, marker) == ours.pid
        assert ours.wait(timeout=10) != 0
        pidfile.write_text("not a pid\n")
        assert signal_owned(pidfile, marker) is None
        (tmp_path / "gone.pid").unlink(missing_ok=True)
        assert signal_owned(tmp_path / "gone.pid", marker) is None
    finally:
        other.kill()
        ours.kill()
        other.wait()
        ours.wait()
