"""What the catalogers and file rules need to see while layers stream by."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dockward.image.fs import Body, Capture, Probe
from dockward.image.tarstream import TarEntry

DPKG_STATUS = "var/lib/dpkg/status"
APK_INSTALLED = "lib/apk/db/installed"
RPM_SQLITE = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")

_OS = re.compile(
    r"(etc/(os-release|debian_version|alpine-release|redhat-release|lsb-release|passwd|shadow|group)"
    r"|usr/lib/os-release)"
)
_PKGDB = re.compile(
    r"var/lib/dpkg/(status|status\.d/[^/]+|info/[^/]+\.list)|lib/apk/db/installed"
    r"|(var/lib/rpm|usr/lib/sysimage/rpm)/rpmdb\.sqlite"
)
_PYTHON = re.compile(
    r".*/(site|dist)-packages/[^/]+\.(dist-info/METADATA|egg-info/PKG-INFO|egg-info)"
    r"|.*/[^/]+\.dist-info/METADATA"
)
# A package's own package.json in node_modules, or one outside node_modules (bundled packages
# such as JupyterLab extensions, an app's root). Files deeper inside a package (test fixtures,
# sub-folders) are not packages; copies vendored in a package's `vendor/` folder are.
_NPM = re.compile(
    r"(.*/)?node_modules/(@[^/]+/)?[^/@][^/]*/((vendor|vendored|third_party)/(@[^/]+/)?[^/@][^/]*/)?"
    r"package\.json|(?!(.*/)?node_modules/)(.*/)?package\.json"
)
_JAR = re.compile(r".*\.(jar|war|ear)")
SECRET_NAMES = re.compile(
    r"(.*/)?(id_rsa|id_dsa|id_ecdsa|id_ed25519|[^/]*\.pem|[^/]*\.key|[^/]*\.p12|[^/]*\.pfx"
    r"|\.env(\.[a-z]+)?|credentials|\.netrc|\.pgpass|\.npmrc|\.pypirc|\.git-credentials"
    r"|\.docker/config\.json|\.aws/credentials|[^/]*service[-_]account[^/]*\.json)"
)
GIT_DIR = re.compile(r"(.*/)?\.git/(config|HEAD)")

GO_MAGIC = b"\xff Go buildinf:"
GO_NOTE = b"\x04\x00\x00\x00Go\x00\x00"  # ELF note: type 4 (Go build ID), name "Go"
GO_NOTE_WINDOW = 64 << 10


def is_secret_path(path: str) -> bool:
    return bool(SECRET_NAMES.fullmatch(path) or GIT_DIR.fullmatch(path))


@dataclass(frozen=True, slots=True)
class GoBuildInfo:
    go_version: str
    modinfo: str


@dataclass(frozen=True, slots=True)
class GoProbe:
    """Finds Go build info in ELF executables by streaming them, never holding one whole."""

    name: str = "go"
    min_size: int = 256 << 10

    def wants(self, path: str, entry: TarEntry) -> bool:
        return entry.is_file and entry.size >= self.min_size and bool(entry.mode & 0o111)

    def read(self, path: str, entry: TarEntry, body: Body) -> Any:
        head = body.read(GO_NOTE_WINDOW)
        # Go's linker puts its build-id note near the start of every ELF it writes (`go tool
        # buildid` reads only the first 32 KiB): other executables are not read further.
        if not head.startswith(b"\x7fELF") or GO_NOTE not in head:
            return None
        at = head.find(GO_MAGIC)
        if at >= 0:
            return parse_buildinfo(head[at:] + body.read(64 << 10))
        tail = head[-len(GO_MAGIC) :]
        while True:
            chunk = body.read(1 << 20)
            if not chunk:
                return None
            data = tail + chunk
            at = data.find(GO_MAGIC)
            if at >= 0:
                rest = data[at:] + body.read(64 << 10)
                return parse_buildinfo(rest)
            tail = data[-len(GO_MAGIC) :]


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data):
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise ValueError("bad varint")


def parse_buildinfo(data: bytes) -> GoBuildInfo | None:
    """Go >= 1.18 inline build info: version and module info as length-prefixed strings."""
    if len(data) < 32 or not data.startswith(GO_MAGIC):
        return None
    flags = data[15]
    if not flags & 0x2:
        return GoBuildInfo("", "")  # pre-1.18 pointer format: a Go binary, versions unreadable
    try:
        n, pos = _uvarint(data, 32)
        version = data[pos : pos + n].decode("utf-8", "replace")
        pos += n
        n, pos = _uvarint(data, pos)
        mod = data[pos : pos + n]
    except ValueError:
        return None
    if len(mod) >= 33 and mod[-17] == ord("\n"):
        mod = mod[16:-16]
    return GoBuildInfo(version, mod.decode("utf-8", "replace"))


# Cheap string tests first: every entry of every layer passes through these.
def _is_os(p: str) -> bool:
    return p.startswith(("etc/", "usr/lib/os-release")) and bool(_OS.fullmatch(p))


def _is_pkgdb(p: str) -> bool:
    return p.startswith(("var/lib/", "lib/apk/", "usr/lib/sysimage/")) and bool(_PKGDB.fullmatch(p))


def _is_python(p: str) -> bool:
    return p.endswith(("/METADATA", "/PKG-INFO", ".egg-info")) and bool(_PYTHON.fullmatch(p))


def _is_npm(p: str) -> bool:
    return p.endswith("package.json") and bool(_NPM.fullmatch(p))


def _is_jar(p: str) -> bool:
    return p.endswith((".jar", ".war", ".ear"))


def _is_secret(p: str) -> bool:
    name = p.rsplit("/", 1)[-1]
    return (
        name in SECRET_BASENAMES
        or name.endswith(SECRET_SUFFIXES)
        or name.startswith(".env")
        or "service" in name
        or p.endswith(("/.git/config", "/.git/HEAD"))
    ) and is_secret_path(p)


SECRET_BASENAMES = frozenset(
    [
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        "credentials",
        ".netrc",
        ".pgpass",
        ".npmrc",
        ".pypirc",
        ".git-credentials",
        "config.json",
    ]
)
SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx")


def default_probes(include_binaries: bool = True) -> list[Probe]:
    probes: list[Probe] = [
        Capture("os", _is_os, 1 << 20),
        Capture("pkgdb", _is_pkgdb, 256 << 20),
        Capture("python", _is_python, 1 << 20),
        Capture("npm", _is_npm, 1 << 20),
        Capture("java", _is_jar, 64 << 20),
        Capture("secret", _is_secret, 64 << 10),
    ]
    if include_binaries:
        probes.append(GoProbe())
    return probes
