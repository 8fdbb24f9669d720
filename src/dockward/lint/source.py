"""Reading an input file safely: size cap, binary and encoding checks, one clear error."""

from __future__ import annotations

import os
import stat

from dockward.errors import InputError

MAX_FILE_BYTES = 4 * 1024 * 1024


def decode_text(data: bytes, name: str) -> str:
    """Bytes -> text, refusing binary data and invalid UTF-8 (with the line of the bad byte)."""
    if b"\x00" in data[:8192]:
        raise InputError(f"{name}: binary file (NUL byte), not a text file")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{name}:{line}: invalid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from exc


def read_text(path: str, max_bytes: int = MAX_FILE_BYTES) -> str:
    """Read a text file of at most `max_bytes`, without reading more than that into memory."""
    try:
        # O_NONBLOCK: a FIFO named Dockerfile must not hang the linter; fstat then rejects it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"{path}: not a regular file")
            size = st.st_size
            if size > max_bytes:
                raise InputError(
                    f"{path}: file is {size // 1024} KiB, over the {max_bytes // 1024} KiB limit"
                )
            data = fh.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path}: is a directory") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    if len(data) > max_bytes:
        raise InputError(f"{path}: file is over the {max_bytes // 1024} KiB limit")
    return decode_text(data, path)
