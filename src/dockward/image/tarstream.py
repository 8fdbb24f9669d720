"""A streaming tar reader with hard bounds on every size it trusts.

Written by hand rather than using `tarfile` because tarfile reads PAX and GNU long-name headers of
any declared size into memory, follows no entry-count or total-size limit, and wants to seek; an
image layer is hostile input and must be read once, front to back, within bounded memory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from dockward.errors import InputError

BLOCK = 512
CHUNK = 1 << 20


class ArchiveError(InputError):
    """A malformed or hostile archive or layer."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one archive may claim. A layer past a bound is refused, not truncated."""

    max_entries: int = 2_000_000
    max_entry_size: int = 8 << 30
    max_total_size: int = 64 << 30
    max_header_size: int = 1 << 20
    max_path_length: int = 4096


DEFAULT_LIMITS = Limits()

FILE, HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIR, FIFO = "0", "1", "2", "3", "4", "5", "6"
KINDS = {FILE: "file", "\0": "file", "7": "file", HARDLINK: "hardlink", SYMLINK: "symlink"}
KINDS.update({CHAR: "char", BLOCKDEV: "block", DIR: "dir", FIFO: "fifo"})


@dataclass(frozen=True, slots=True)
class TarEntry:
    name: str
    kind: str
    mode: int
    uid: int
    gid: int
    size: int
    linkname: str = ""

    @property
    def is_file(self) -> bool:
        return self.kind == "file"


def normalize(name: str, where: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """A member name as a clean relative path; absolute or escaping names are refused."""
    if len(name) > limits.max_path_length:
        raise ArchiveError(f"{where}: entry name longer than {limits.max_path_length} bytes")
    if "\0" in name:
        raise ArchiveError(f"{where}: entry name contains a NUL byte")
    if name.startswith("/"):
        raise ArchiveError(f"{where}: absolute path {name!r} in archive")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"{where}: path traversal {name!r} in archive")
    return "/".join(parts)


# An octal field: optional leading spaces, octal digits, then NULs or spaces. Nothing else: int()
# alone would also take a sign, underscores or tabs ("-1" would be a negative size).
_OCTAL = re.compile(rb" *([0-7]*)[ \0]*")
# name, mode, uid, gid, size, mtime, checksum, type, linkname, magic, version, uname, gname,
# devmajor, devminor, prefix
_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s")


def _number(field: bytes, what: str, where: str) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for values past the octal field
        value = int.from_bytes(field[1:], "big")
        if field[0] & 0x40:
            raise ArchiveError(f"{where}: negative {what} in tar header")
        return value
    m = _OCTAL.fullmatch(field) or _OCTAL.fullmatch(field.split(b"\0", 1)[0])
    if m is None:
        raise ArchiveError(f"{where}: bad {what} field in tar header")
    digits = m.group(1)
    return int(digits, 8) if digits else 0


def _string(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _parse_pax(data: bytes, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError as exc:
            raise ArchiveError(f"{where}: malformed PAX header") from exc
        if length <= 0 or pos + length > len(data):
            raise ArchiveError(f"{where}: malformed PAX header")
        record = data[space + 1 : pos + length - 1]
        key, _, value = record.partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


class TarStream:
    """Iterate entries of a tar stream; `read()` returns the current entry's body.

    Bodies not read are skipped (by seeking when the source allows it).
    """

    def __init__(
        self, fileobj: BinaryIO, where: str = "archive", limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self._f = fileobj
        self._where = where
        self._limits = limits
        self._remaining = 0
        self._padding = 0
        self._total = 0
        self._count = 0
        self.offset = -1  # where the current body starts, when the source is seekable
        self._size = 0
        try:
            self._seekable = bool(fileobj.seekable())
        except (AttributeError, OSError):
            self._seekable = False

    def _read_exact(self, n: int) -> bytes:
        data = self._f.read(n)
        while len(data) < n:
            more = self._f.read(n - len(data))
            if not more:
                raise ArchiveError(f"{self._where}: truncated archive")
            data += more
        return data

    def _skip(self, n: int) -> None:
        if n <= 0:
            return
        if self._seekable:
            self._f.seek(n, io.SEEK_CUR)
            return
        while n > 0:
            got = self._f.read(min(n, CHUNK))
            if not got:
                raise ArchiveError(f"{self._where}: truncated archive")
            n -= len(got)

    def read(self, n: int = -1) -> bytes:
        """Up to n bytes of the current body (all of it when n < 0)."""
        if n < 0 or n > self._remaining:
            n = self._remaining
        if n == 0:
            return b""
        if self.offset >= 0:  # others (a Window) may have moved the shared file position
            self._f.seek(self.offset + self._size - self._remaining)
        data = self._read_exact(n)
        self._remaining -= len(data)
        return data

    def _finish_body(self) -> None:
        if self.offset >= 0:
            self._f.seek(self.offset + self._size + self._padding)
        else:
            self._skip(self._remaining + self._padding)
        self._remaining = self._padding = 0
        self.offset = -1

    def _ext_body(self, size: int) -> bytes:
        if size > self._limits.max_header_size:
            raise ArchiveError(f"{self._where}: extended header of {size} bytes is too large")
        data = self._read_exact(size)
        self._skip(-size % BLOCK)
        return data

    def __iter__(self) -> Iterator[TarEntry]:
        pax: dict[str, str] = {}
        global_pax: dict[str, str] = {}
        long_name = long_link = ""
        started = False
        while True:
            self._finish_body()
            header = self._f.read(BLOCK)
            if not header:
                # A tar ends with zero blocks; a stream that just stops was cut short (a
                # truncated zstd frame, for one, ends its output without an error).
                what = (
                    "truncated archive (no end-of-archive marker)"
                    if started
                    else "truncated or empty archive (no tar header)"
                )
                raise ArchiveError(f"{self._where}: {what}")
            if header == b"\0" * len(header):
                return  # end of archive
            started = True
            while len(header) < BLOCK:
                more = self._f.read(BLOCK - len(header))
                if not more:
                    what = (
                        "not a tar archive (too short)" if not self._count else "truncated archive"
                    )
                    raise ArchiveError(f"{self._where}: {what}")
                header += more
            (
                f_name,
                f_mode,
                f_uid,
                f_gid,
                f_size,
                _mtime,
                f_sum,
                f_type,
                f_link,
                f_magic,
                _version,
                _uname,
                _gname,
                _major,
                _minor,
                f_prefix,
            ) = _HEADER.unpack_from(header)
            stored = _number(f_sum, "checksum", self._where)
            computed = sum(header) - sum(f_sum) + 256  # checksum field as spaces
            if stored != computed:
                raise ArchiveError(f"{self._where}: not a tar archive (bad header checksum)")
            kind = f_type.decode("latin-1") if f_type != b"\0" else "\0"
            size = _number(f_size, "size", self._where)
            if kind in ("x", "g"):
                parsed = _parse_pax(self._ext_body(size), self._where)
                (pax if kind == "x" else global_pax).update(parsed)
                continue
            if kind in ("L", "K"):
                text = self._ext_body(size).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                if kind == "L":
                    long_name = text
                else:
                    long_link = text
                continue
            if kind == "S":
                raise ArchiveError(f"{self._where}: sparse tar entries are not supported")
            meta = {**global_pax, **pax} if pax or global_pax else pax
            name = _string(f_name)
            if f_magic[:5] == b"ustar" and f_prefix.strip(b"\0"):
                name = _string(f_prefix) + "/" + name
            name = meta.get("path") or long_name or name
            link = meta.get("linkpath") or long_link or _string(f_link)
            if "size" in meta:
                try:
                    size = int(meta["size"])
                except ValueError as exc:
                    raise ArchiveError(f"{self._where}: bad PAX size") from exc
            pax, long_name, long_link = {}, "", ""
            self._count += 1
            if self._count > self._limits.max_entries:
                raise ArchiveError(
                    f"{self._where}: more than {self._limits.max_entries} entries (tar bomb?)"
                )
            if kind not in KINDS:
                kind = FILE if kind.isdigit() else kind
            entry_kind = KINDS.get(kind, "other")
            if entry_kind not in ("file",):
                size = 0 if entry_kind != "other" else size
            if size > self._limits.max_entry_size:
                raise ArchiveError(
                    f"{self._where}: entry {name!r} of {size} bytes is over the "
                    f"{self._limits.max_entry_size}-byte limit"
                )
            self._total += size
            if self._total > self._limits.max_total_size:
                raise ArchiveError(
                    f"{self._where}: more than {self._limits.max_total_size} bytes "
                    "uncompressed (tar bomb?)"
                )
            self._remaining = self._size = size
            self._padding = -size % BLOCK
            if self._seekable:
                self.offset = self._f.tell()
            mode = _number(f_mode, "mode", self._where)
            uid = int(meta["uid"]) if meta.get("uid", "").isdigit() else None
            gid = int(meta["gid"]) if meta.get("gid", "").isdigit() else None
            yield TarEntry(
                name=name,
                kind=entry_kind,
                mode=mode & 0o7777,
                uid=uid if uid is not None else _number(f_uid, "uid", self._where),
                gid=gid if gid is not None else _number(f_gid, "gid", self._where),
                size=size,
                linkname=link,
            )


class Window(io.RawIOBase):
    """A read-only, seekable view of [offset, offset+size) of a seekable file."""

    def __init__(self, f: BinaryIO, offset: int, size: int) -> None:
        self._f, self._start, self._size, self._pos = f, offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, min(self._size, base + pos))
        return self._pos

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        n = min(len(buf), self._size - self._pos)
        if n <= 0:
            return 0
        self._f.seek(self._start + self._pos)
        data = self._f.read(n)
        buf[: len(data)] = data
        self._pos += len(data)
        return len(data)


class Hashing(io.RawIOBase):
    """Pass-through reader that hashes what flows through it (to verify blob digests)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.sha256 = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        data = self._f.read(len(buf))
        if not data:
            return 0
        buf[: len(data)] = data
        self.sha256.update(data)
        self.count += len(data)
        return len(data)

    def drain(self) -> None:
        while self._f.read(CHUNK):
            pass

    def hexdigest(self) -> str:
        return self.sha256.hexdigest()


class _Peek(io.RawIOBase):
    def __init__(self, head: bytes, f: BinaryIO) -> None:
        self._head, self._f = head, f

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buf), len(self._head))
            buf[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._f.read(len(buf))
        buf[: len(data)] = data
        return len(data)


class _Decoded(io.RawIOBase):
    """A decompressor's output; a corrupt or cut stream is an ArchiveError, not a crash."""

    def __init__(self, stream: Any, where: str, errors: tuple[type[BaseException], ...]) -> None:
        self._stream, self._where, self._errors = stream, where, errors

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._stream.read(len(buf))
        except self._errors as exc:
            raise ArchiveError(f"{self._where}: corrupt compressed layer ({exc})") from exc
        buf[: len(data)] = data
        return len(data)


# Memory a zstd frame may ask for (its window); the reference decoder's default bound.
ZSTD_MAX_WINDOW = 1 << 27


def decompressed(f: BinaryIO, where: str) -> BinaryIO:
    """The layer stream, decompressed when it is gzip or zstd (told by magic, not by name)."""
    head = f.read(4)
    if head[:2] == b"\x1f\x8b":
        gz = gzip.GzipFile(fileobj=io.BufferedReader(_Peek(head, f), CHUNK), mode="rb")
        gz_errors = (OSError, EOFError, zlib.error)
        return cast(BinaryIO, io.BufferedReader(_Decoded(gz, where, gz_errors), CHUNK))
    if head == b"\x28\xb5\x2f\xfd":
        import zstandard

        dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        source = cast(BinaryIO, io.BufferedReader(_Peek(head, f), CHUNK))
        reader = dctx.stream_reader(source, read_across_frames=True)
        zstd_errors = (zstandard.ZstdError, OSError)
        return cast(BinaryIO, io.BufferedReader(_Decoded(reader, where, zstd_errors), CHUNK))
    try:
        seekable = f.seekable()
    except (AttributeError, OSError):
        seekable = False
    if seekable:
        f.seek(-len(head), io.SEEK_CUR)
        return f
    return io.BufferedReader(_Peek(head, f), CHUNK)
