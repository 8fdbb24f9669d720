"""Shared helpers for the monitor benchmarks: a lab container and a monitor subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

BENCH_RULES = """
- rule: Bench exec in container
  desc: counts the benchmark's execs
  condition: >
    evt.type in (execve, execveat) and container.name startswith dwmon-bench
    and proc.cmdline contains dwmon-mark
  output: "bench exec %proc.cmdline at %evt.time"
  priority: DEBUG
  tags: [bench]
"""


def api() -> Any:
    from dockward.engine import connect, resolve_endpoint
    from dockward.engine.lab import build_busybox_image

    client = connect(resolve_endpoint())
    build_busybox_image(client, "dockward-lab/busybox:1.0")
    return client


def start_container(client: Any, name: str) -> str:
    for c in client.containers(all=True, filters={"name": name}):
        client.remove_container(c["Id"], force=True)
    c = client.create_container(
        "dockward-lab/busybox:1.0",
        command=["sleep", "600"],
        name=name,
        labels={"dockward.test": "dwmon"},
    )
    client.start(c["Id"])
    return str(c["Id"])


def start_monitor(
    workdir: Path,
    outputs: list[str],
    sources: list[str],
    rules_text: str = BENCH_RULES,
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[str]:
    rules = workdir / "bench_rules.yaml"
    rules.write_text(rules_text)
    args = [sys.executable, "-m", "dockward", "monitor", "run", "--rules", str(rules)]
    args += ["--spool-dir", str(workdir / "spool"), "--stats"]
    for o in outputs:
        args += ["-o", o]
    for s in sources:
        args += ["--source", s]
    args += extra
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen(
        args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if "monitor running" not in line:
        raise SystemExit(f"monitor did not start: {line}{proc.stderr.read()}")
    time.sleep(1.0)
    return proc


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="dwmon-bench-", dir="/tmp"))
