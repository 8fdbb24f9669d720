"""Catalogers on recorded package databases, in one-layer images built in memory."""

from __future__ import annotations

import datetime as dt
import io
import struct
import zipfile
from pathlib import Path

from dockward.sbom import build_sbom, end_of_life
from dockward.sbom.model import Distro
from dockward.sbom.rpm import parse_header
from dockward.scan import content_from_files
from dockward.vulndb import match_packages, open_db
from tests.scan.conftest import FIX

ROCKY = b'NAME="Rocky Linux"\nVERSION="9.3 (Blue Onyx)"\nID="rocky"\nVERSION_ID="9.3"\n'
ALPINE_OS = b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n'


def test_rpm_sqlite_database() -> None:
    image = content_from_files(
        {"etc/os-release": ROCKY, "var/lib/rpm/rpmdb.sqlite": (FIX / "rpmdb.sqlite").read_bytes()}
    )
    sbom = build_sbom(image.fs)
    got = {(p.name, p.version, p.ecosystem) for p in sbom.packages}
    assert got == {
        ("openssl-libs", "1:3.0.7-24.el9", "Rocky Linux:9"),
        ("bash", "5.1.8-9.el9", "Rocky Linux:9"),
    }
    bash = next(p for p in sbom.packages if p.name == "bash")
    assert bash.purl == "pkg:rpm/rocky/bash@5.1.8-9.el9?arch=noarch"
    assert bash.licenses == ("MIT",)


def test_rpm_header_parser_is_strict() -> None:
    # one entry pointing past the data store must be refused, not read out of bounds
    blob = struct.pack(">II", 1, 4) + struct.pack(">iIiI", 1000, 6, 400, 1) + b"abc\0"
    try:
        parse_header(blob)
    except ValueError as exc:
        assert "outside" in str(exc)
    else:
        raise AssertionError("malformed header accepted")
    image = content_from_files({"var/lib/rpm/rpmdb.sqlite": b"not sqlite at all" * 10})
    assert any("not a readable rpm sqlite" in n for n in build_sbom(image.fs).notes)


def test_apk_database_and_alpine_matching(vulndb: Path) -> None:
    image = content_from_files(
        {
            "etc/os-release": ALPINE_OS,
            "etc/alpine-release": b"3.20.3\n",
            "lib/apk/db/installed": (FIX / "apk-installed").read_bytes(),
        }
    )
    sbom = build_sbom(image.fs)
    assert sbom.distro is not None and sbom.distro.osv_ecosystem == "Alpine:v3.20"
    crypto = next(p for p in sbom.packages if p.name == "libcrypto3")
    assert (crypto.version, crypto.source_name, crypto.licenses) == (
        "3.3.0-r2",
        "openssl",
        ("Apache-2.0",),
    )
    assert crypto.purl == "pkg:apk/alpine/libcrypto3@3.3.0-r2?arch=x86_64&distro=alpine-3.20.3"
    conn = open_db(vulndb)
    try:
        found = match_packages(conn, sbom.packages)
    finally:
        conn.close()
    assert [(m.vuln_id, m.package.name, m.fixed) for m in found] == [
        ("DWTEST-ALPINE-0001", "libcrypto3", "3.3.0-r3")
    ]


def test_distroless_status_d_and_python_forms() -> None:
    status_d = b"Package: libc6\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\nSource: glibc\n"
    image = content_from_files(
        {
            "etc/os-release": b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
            "var/lib/dpkg/status.d/libc6": status_d,
            "var/lib/dpkg/status.d/libc6.md5sums": b"abc  lib/x\n",
            "usr/lib/python3/dist-packages/foo.egg-info": b"Metadata-Version: 1.1\nName: foo\nVersion: 1.0\n",
            "app/venv/lib/python3.11/site-packages/Bar_Baz-2.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: Bar_Baz\nVersion: 2.0\nLicense-Expression: MIT\n",
        }
    )
    sbom = build_sbom(image.fs)
    got = {(p.type, p.name, p.version) for p in sbom.packages}
    assert got == {
        ("deb", "libc6", "2.36-9+deb12u4"),
        ("pypi", "foo", "1.0"),
        ("pypi", "Bar_Baz", "2.0"),
    }
    libc = next(p for p in sbom.packages if p.name == "libc6")
    assert (libc.source_name, libc.ecosystem) == ("glibc", "Debian:12")
    bar = next(p for p in sbom.packages if p.name == "Bar_Baz")
    assert bar.purl == "pkg:pypi/bar-baz@2.0" and bar.licenses == ("MIT",)


def test_java_manifest_and_filename_fallbacks() -> None:
    def jar(**members: str) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, text in members.items():
                zf.writestr(name.replace("__", "/").replace("_MF", ".MF"), text)
        return buf.getvalue()

    image = content_from_files(
        {
            "opt/a/lib.jar": jar(
                **{
                    "META-INF__MANIFEST_MF": "Implementation-Title: netty-common\n"
                    "Implementation-Version: 4.1.100.Final\nImplementation-Vendor-Id: io.netty\n"
                }
            ),
            "opt/a/log4j-core-2.14.1.jar": jar(
                **{"META-INF__MANIFEST_MF": "Manifest-Version: 1.0\n"}
            ),
            "opt/a/broken.jar": b"PK not a zip",
        }
    )
    sbom = build_sbom(image.fs)
    got = {(p.name, p.version) for p in sbom.packages}
    assert got == {("io.netty:netty-common", "4.1.100.Final"), ("log4j-core", "2.14.1")}
    assert any("broken.jar: unreadable archive" in n for n in sbom.notes)


def test_end_of_life_table() -> None:
    assert end_of_life(Distro("debian", "9")) == dt.date(2022, 6, 30)
    assert end_of_life(Distro("alpine", "3.20.3")) == dt.date(2026, 4, 1)
    assert end_of_life(Distro("ubuntu", "22.04")) == dt.date(2027, 6, 1)
    assert end_of_life(Distro("plan9", "4")) is None
