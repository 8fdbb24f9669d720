"""rpm: the sqlite database (`rpmdb.sqlite`), read from memory, its header blobs parsed strictly."""

from __future__ import annotations

import sqlite3
import struct

from dockward.errors import DockwardError
from dockward.image.fs import ImageFS
from dockward.sbom.model import Distro, Package
from dockward.sbom.probes import RPM_SQLITE
from dockward.sbom.purl import purl

NAME, VERSION, RELEASE, EPOCH, LICENSE, VENDOR, ARCH, SOURCERPM = (
    1000,
    1001,
    1002,
    1003,
    1014,
    1011,
    1022,
    1044,
)
STRING_TYPES = {6, 8, 9}  # STRING, STRING_ARRAY, I18NSTRING
INT32 = 4
MAX_ENTRIES = 1 << 16


class HeaderError(DockwardError, ValueError):
    pass


def parse_header(blob: bytes) -> dict[int, str | int]:
    """The tags we need from one rpm header blob (the rpmdb form, without the lead magic)."""
    if len(blob) < 8:
        raise HeaderError("short header")
    count, data_len = struct.unpack(">II", blob[:8])
    if count > MAX_ENTRIES or 8 + count * 16 + data_len > len(blob):
        raise HeaderError("header sizes do not fit the blob")
    data = blob[8 + count * 16 : 8 + count * 16 + data_len]
    out: dict[int, str | int] = {}
    for i in range(count):
        tag, typ, offset, n = struct.unpack(">iIiI", blob[8 + i * 16 : 24 + i * 16])
        if tag not in (NAME, VERSION, RELEASE, EPOCH, LICENSE, VENDOR, ARCH, SOURCERPM):
            continue
        if offset < 0 or offset >= len(data):
            raise HeaderError(f"tag {tag} points outside the header")
        if typ in STRING_TYPES:
            end = data.find(b"\0", offset)
            out[tag] = data[offset : end if end >= 0 else len(data)].decode("utf-8", "replace")
        elif typ == INT32 and n >= 1 and offset + 4 <= len(data):
            out[tag] = struct.unpack(">i", data[offset : offset + 4])[0]
    return out


def catalog_rpm(fs: ImageFS, distro: Distro | None) -> tuple[list[Package], list[str]]:
    found = fs.probed("pkgdb")
    for path in RPM_SQLITE:
        hit = found.get(path)
        if hit is None:
            continue
        layer, data = hit
        if data is None:
            return [], [f"/{path}: too large to read"]
        conn = sqlite3.connect(":memory:")
        try:
            conn.deserialize(data)
            rows = conn.execute("SELECT blob FROM Packages").fetchall()
        except sqlite3.DatabaseError as exc:
            return [], [f"/{path}: not a readable rpm sqlite database ({exc})"]
        finally:
            conn.close()
        out: list[Package] = []
        notes: list[str] = []
        ns = distro.id if distro else "rpm"
        for (blob,) in rows:
            try:
                h = parse_header(bytes(blob))
            except HeaderError as exc:
                notes.append(f"/{path}: skipped a malformed header ({exc})")
                continue
            name = str(h.get(NAME, ""))
            if not name or name == "gpg-pubkey":
                continue
            evr = f"{h.get(VERSION, '')}-{h.get(RELEASE, '')}"
            if EPOCH in h:
                evr = f"{h[EPOCH]}:{evr}"
            src = str(h.get(SOURCERPM, ""))
            src_name = src.rsplit("-", 2)[0] if src.count("-") >= 2 else name
            out.append(
                Package(
                    name=name,
                    version=evr,
                    type="rpm",
                    purl=purl("rpm", name, evr, ns, {"arch": str(h.get(ARCH, ""))}),
                    ecosystem=distro.osv_ecosystem if distro else "",
                    cataloger="rpm",
                    layer=fs.layers[layer].digest,
                    locations=(f"/{path}",),
                    source_name=src_name,
                    source_version=evr,
                    licenses=(str(h[LICENSE]),) if LICENSE in h else (),
                    arch=str(h.get(ARCH, "")),
                )
            )
        return out, notes
    return [], []
