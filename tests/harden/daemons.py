"""An extra real dockerd whose settings come from argv flags plus a daemon.json, restartable.

It runs in its own network namespace (tests/audit/daemons.py explains why) and is started by a
short-lived launcher process, so that the daemon is nobody's child: `restart` (also usable as
`python -m tests.harden.daemons restart ROOT`, the --restart-cmd of the tests) stops it by its
pidfile and starts it again with the same argv, like `systemctl restart docker` would.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.audit.daemons import DOCKER, ensure_netns, stop_stale
from tests.pidfiles import owned_pid, signal_owned


def argv_of(root: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        "dockerd",
        "--config-file",
        str(root / "daemon.json"),
        "--data-root",
        str(root / "data"),
        "--exec-root",
        str(root / "exec"),
        "--pidfile",
        str(root / "docker.pid"),
        "-H",
        f"unix://{root / 'docker.sock'}",
        *extra,
    ]


def setup(root: Path, netns: str, config: dict[str, object], extra: tuple[str, ...]) -> None:
    stop_stale(root)
    root.mkdir(parents=True)
    (root / "daemon.json").write_text(json.dumps(config, indent=2) + "\n")
    (root / "launch.json").write_text(json.dumps({"netns": netns, "argv": argv_of(root, extra)}))
    ensure_netns(netns)


def stop_daemon(root: Path, timeout: float = 30) -> None:
    """Stop the daemon of `root` by its pidfile, only if that pid is still this root's dockerd."""
    pidfile = root / "docker.pid"
    pid = signal_owned(pidfile, str(root))
    if pid is None:
        return
    deadline = time.monotonic() + timeout
    while owned_pid(pidfile, str(root)) == pid and time.monotonic() < deadline:
        time.sleep(0.1)
    signal_owned(pidfile, str(root), signal.SIGKILL)


def launch(root: Path) -> None:
    """Start dockerd detached (the launcher returns at once; the caller waits for the socket)."""
    spec = json.loads((root / "launch.json").read_text())
    log = open(root / "dockerd.log", "ab")  # noqa: SIM115 - handed to the daemon
    subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{spec['netns']}", *spec["argv"]],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def restart(root: Path) -> None:
    stop_daemon(root)
    launch(root)


def start(root: Path) -> None:
    """Launch through a separate process so the daemon is not a child of the test run."""
    subprocess.run(
        [sys.executable, "-m", "tests.harden.daemons", "launch", str(root)],
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def wait_ready(root: Path, timeout: float = 60) -> bool:
    sock = f"unix://{root / 'docker.sock'}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run([DOCKER, "-H", sock, "info"], capture_output=True).returncode == 0:
            return True
        time.sleep(0.3)
    return False


def log_tail(root: Path, n: int = 3000) -> str:
    try:
        return (root / "dockerd.log").read_text(errors="replace")[-n:]
    except OSError:
        return ""


if __name__ == "__main__":
    action, where = sys.argv[1], Path(sys.argv[2])
    {"launch": launch, "restart": restart, "stop": stop_daemon}[action](where)
