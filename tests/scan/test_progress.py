"""Progress bars: a rich bar on a terminal for long work (a scan reading layers), nothing when
stderr is not a terminal (CI logs, pipes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO, run_cli


def _scan_with_stderr_on_a_pty(archive: str, db: Path) -> tuple[int, str, str]:
    controller, terminal = os.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), COLUMNS="120", TERM="xterm")
    env.pop("DOCKWARD_FORMAT", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dockward",
            "scan",
            "--archive",
            archive,
            "--db",
            str(db),
            "-f",
            "json",
            "--no-cache",
            "--fail-on",
            "never",
        ],
        stdout=subprocess.PIPE,
        stderr=terminal,
        env=env,
    )
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out = proc.stdout.read() if proc.stdout else b""
    code = proc.wait(timeout=120)
    os.close(controller)
    return code, out.decode(), seen.decode("utf-8", "replace")


def test_progress_bar_on_a_terminal_only(fixture_image: dict[str, Any], vulndb: Path) -> None:
    archive = str(fixture_image["archive"])
    code, out, terminal = _scan_with_stderr_on_a_pty(archive, vulndb)
    assert code == 0 and out.startswith("{")
    assert "layer" in terminal and "/" in terminal  # "layer N/M" drives the bar
    assert "━" in terminal  # rich's bar
    quiet = run_cli(
        "scan",
        "--archive",
        archive,
        "--db",
        str(vulndb),
        "-f",
        "json",
        "--no-cache",
        "--fail-on",
        "never",
    )
    assert quiet.code == 0 and quiet.err == ""  # not a terminal: not a byte of progress
