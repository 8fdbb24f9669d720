"""Atomic file writes: temp file + fsync + rename, the previous version kept."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def atomic_write(
    path: str | Path, data: str | bytes, *, mode: int | None = None, keep_previous: bool = False
) -> None:
    """Write all or nothing: readers see the old file or the new one, never half of it."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_output(path, mode=mode, keep_previous=keep_previous) as fh:
        fh.write(payload)


@contextlib.contextmanager
def atomic_output(
    path: str | Path, *, mode: int | None = None, keep_previous: bool = False
) -> Iterator[IO[bytes]]:
    """A file written in pieces that appears whole or not at all: a temporary file beside it,
    renamed over it when the block ends without an error (`atomic_write` in pieces)."""
    # Write through a symlink to the file it names, not over the link.
    target = Path(os.path.realpath(path))
    directory = target.parent
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        # /dev/null, /dev/stdout, a FIFO: renaming over them would replace the device node.
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "Is a directory", str(path))
        with open(target, "wb") as fh:
            yield fh
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        elif target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        if keep_previous and target.exists():
            shutil.copy2(target, str(target) + ".bak")
        os.replace(tmp, target)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
