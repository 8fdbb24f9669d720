"""A private PostgreSQL cluster for tests: initdb into a temporary directory, a unix socket in it
(no TCP port to collide on), run as the `postgres` user when the tests run as root."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.pidfiles import owned_pid, signal_owned

PREFIX = "dwstore-pg-"


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def clean_stale() -> None:
    """Remove clusters an earlier, killed run left behind (their postmaster is gone or stopped
    here); a cluster whose postmaster still runs for a live test session is left alone."""
    for d in glob.glob(os.path.join(tempfile.gettempdir(), PREFIX + "*")):
        pidfile = Path(d) / "data" / "postmaster.pid"
        owner = Path(d) / "owner.pid"
        try:
            owner_pid = int(owner.read_text().strip())
            os.kill(owner_pid, 0)
            continue  # the test session that made it still runs
        except (OSError, ValueError):
            pass
        pid = signal_owned(pidfile, d, signal.SIGQUIT)  # a reused pid is not ours
        for _ in range(50 if pid is not None else 0):
            if owned_pid(pidfile, d) != pid:
                break
            time.sleep(0.1)
        shutil.rmtree(d, ignore_errors=True)


@dataclass
class Cluster:
    root: Path
    bindir: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.root}"

    def create_db(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@/{name}?host={self.root}"

    def stop(self) -> None:
        subprocess.run(
            _as_user(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.root / "data"),
                    "-m",
                    "immediate",
                    "stop",
                ]
            ),
            capture_output=True,
            check=False,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> Cluster:
    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL is not installed (scripts/setup.sh --test installs postgresql)"
        )
    clean_stale()
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    (root / "owner.pid").write_text(str(os.getpid()))
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data = root / "data"
    subprocess.run(
        _as_user(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    opts = f"-c listen_addresses='' -c unix_socket_directories={root} -c fsync=off -c max_connections=50"
    subprocess.run(
        _as_user(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
        timeout=90,
    )
    return Cluster(root, bindir)
