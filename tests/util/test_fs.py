"""Atomic writes: all or nothing, and never over a device node or a symlink."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dockward.util.fs import atomic_write


def test_replaces_content_and_keeps_previous(tmp_path: Path) -> None:
    f = tmp_path / "daemon.json"
    f.write_text("old")
    os.chmod(f, 0o600)
    atomic_write(f, "new", keep_previous=True)
    assert f.read_text() == "new" and (tmp_path / "daemon.json.bak").read_text() == "old"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".*.tmp"))


def test_device_node_stays_a_device() -> None:
    atomic_write(os.devnull, "discarded")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_fifo_is_written_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    pid = os.fork()
    if pid == 0:  # the reader
        with open(fifo, "rb") as fh:
            os._exit(0 if fh.read() == b"payload" else 1)
    atomic_write(fifo, "payload")
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0 and stat.S_ISFIFO(fifo.stat().st_mode)


def test_symlink_target_is_written(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    atomic_write(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_failed_write_leaves_old_file(tmp_path: Path) -> None:
    f = tmp_path / "x"
    f.write_text("old")
    with pytest.raises(TypeError):
        atomic_write(f, 123)  # type: ignore[arg-type]
    assert f.read_text() == "old" and not list(tmp_path.glob(".*.tmp"))
