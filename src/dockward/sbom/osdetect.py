"""Which distribution an image is built on, and whether it is past end of life."""

from __future__ import annotations

import datetime as dt

from dockward.image.fs import ImageFS
from dockward.sbom.model import Distro

OS_FILES = (
    "etc/os-release",
    "usr/lib/os-release",
    "etc/debian_version",
    "etc/alpine-release",
    "etc/redhat-release",
    "etc/lsb-release",
)

# End of (all, including LTS) security support, from each project's published schedule.
EOL: dict[str, dict[str, str]] = {
    "debian": {
        "7": "2018-05-31",
        "8": "2020-06-30",
        "9": "2022-06-30",
        "10": "2024-06-30",
        "11": "2026-08-31",
        "12": "2028-06-30",
        "13": "2030-06-30",
    },
    "alpine": {
        "3.12": "2022-05-01",
        "3.13": "2022-11-01",
        "3.14": "2023-05-01",
        "3.15": "2023-11-01",
        "3.16": "2024-05-23",
        "3.17": "2024-11-22",
        "3.18": "2025-05-09",
        "3.19": "2025-11-01",
        "3.20": "2026-04-01",
        "3.21": "2026-11-01",
        "3.22": "2027-05-01",
    },
    "ubuntu": {
        "16.04": "2021-04-30",
        "18.04": "2023-05-31",
        "20.04": "2025-05-31",
        "22.04": "2027-06-01",
        "23.10": "2024-07-11",
        "24.04": "2029-05-31",
    },
    "centos": {"6": "2020-11-30", "7": "2024-06-30", "8": "2021-12-31"},
}


def _parse_os_release(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            out[key] = value.strip().strip("\"'")
    return out


def detect_distro(fs: ImageFS) -> Distro | None:
    def text(path: str) -> str:
        data = fs.read(path)
        return data.decode("utf-8", "replace") if data else ""

    rel = _parse_os_release(text("etc/os-release") or text("usr/lib/os-release"))
    ident = rel.get("ID", "").lower()
    version = rel.get("VERSION_ID", "")
    codename = rel.get("VERSION_CODENAME", "")
    pretty = rel.get("PRETTY_NAME", "")
    debian_version = text("etc/debian_version").strip()
    alpine = text("etc/alpine-release").strip()
    if alpine and (not ident or ident == "alpine"):
        return Distro("alpine", alpine, codename, pretty or f"Alpine Linux v{alpine}")
    if ident == "debian" or (not ident and debian_version):
        if not version and debian_version[:1].isdigit():
            version = debian_version.split(".")[0]
        return Distro("debian", version or debian_version or "unknown", codename, pretty)
    if ident:
        return Distro(ident, version, codename, pretty)
    redhat = text("etc/redhat-release").strip()
    if redhat:
        digits = "".join(c for c in redhat if c.isdigit() or c == ".").strip(".")
        return Distro("rhel", digits.split(".")[0] if digits else "", "", redhat)
    return None


def end_of_life(distro: Distro) -> dt.date | None:
    table = EOL.get(distro.id, {})
    for key in (
        distro.version,
        ".".join(distro.version.split(".")[:2]),
        distro.version.split(".")[0],
    ):
        if key in table:
            return dt.date.fromisoformat(table[key])
    return None
