"""End to end on a real image built by the daemon: inventory, merged view, vulnerabilities."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dockward.model import Severity, Status
from dockward.scan import ScanCache, ScanOptions, inventory, scan_image
from tests.conftest import run_cli
from tests.scan.conftest import maven_db


def _pkgs(inv: Any) -> dict[tuple[str, str], Any]:
    return {(p.type, p.name): p for p in inv.sbom.packages}


def test_daemon_inventory_and_merged_view(fixture_image: dict[str, Any]) -> None:
    inv = inventory(fixture_image["ref"], ScanOptions(source="daemon"))
    pkgs = _pkgs(inv)
    assert inv.sbom.distro is not None and inv.sbom.distro.id == "debian"
    assert inv.sbom.distro.osv_ecosystem == "Debian:12"
    # dpkg: real status paragraphs, with source package and binNMU version kept apart
    yaml_deb = pkgs[("deb", "python3-yaml")]
    assert yaml_deb.source_name == "pyyaml" and yaml_deb.source_version == "6.0-3"
    assert yaml_deb.version == "6.0-3+b2"
    assert yaml_deb.purl.startswith("pkg:deb/debian/python3-yaml@6.0-3%2Bb2?arch=amd64")
    assert pkgs[("deb", "zlib1g")].source_name == "zlib"
    # Python: dpkg-owned PyYAML/six metadata is the OS package, not a second PyPI package
    assert ("pypi", "PyYAML") not in pkgs and ("pypi", "six") not in pkgs
    assert pkgs[("pypi", "requests")].version == "2.25.0"
    assert pkgs[("pypi", "legacy-pkg")].version == "0.3"
    # npm, scoped and nested
    assert pkgs[("npm", "@types/node")].purl == "pkg:npm/%40types/node@20.1.0"
    assert pkgs[("npm", "debug")].version == "2.6.9"
    # Java, with a jar nested in the fat jar
    assert pkgs[("maven", "org.example:demo-lib")].version == "2.4.1"
    assert pkgs[("maven", "com.fasterxml.jackson.core:jackson-databind")].version == "2.9.10"
    if fixture_image["go_skip"]:
        print(f"Go part skipped: {fixture_image['go_skip']}")
    else:
        assert ("golang", "stdlib") in pkgs
        assert pkgs[("golang", "example.com/dep")].version == "v1.2.3"
    # whiteout: the deleted key is gone; opaque dir: only the new file remains
    assert inv.fs.get("root/.ssh/id_rsa") is None
    assert inv.fs.listdir("opt/data") == ["new.txt"]
    assert inv.fs.get("usr/bin/fakesu").setuid
    # every package names the layer that added it
    layers = {layer.digest for layer in inv.loaded.layers}
    assert all(p.layer in layers for p in inv.sbom.packages)


def test_archive_gives_the_same_inventory(fixture_image: dict[str, Any]) -> None:
    a = inventory(str(fixture_image["archive"]), ScanOptions(source="archive"))
    d = inventory(fixture_image["ref"], ScanOptions(source="daemon"))
    assert [p.purl for p in a.sbom.packages] == [p.purl for p in d.sbom.packages]
    assert a.loaded.config_digest == fixture_image["id"]


def test_scan_finds_vulnerabilities_and_image_problems(
    fixture_image: dict[str, Any], vulndb: Path, tmp_path: Path
) -> None:
    cache = ScanCache(tmp_path / "scans.sqlite")
    result = scan_image(fixture_image["ref"], vulndb, ScanOptions(source="daemon"), cache=cache)
    by_id = {m.vuln_id: m for m in result.matches}
    assert by_id["PYSEC-2023-74"].fixed == "2.31.0"
    assert by_id["PYSEC-2023-74"].package.name == "requests"
    assert by_id["PYSEC-2022-42969"].unfixed  # py: last_affected 1.11.0, no fix
    assert by_id["DWTEST-2023-45853"].severity == "critical" and by_id["DWTEST-2023-45853"].unfixed
    assert by_id["DWTEST-2024-0001"].fixed == "6.0-3+deb12u1"  # matched by source version
    assert "DWTEST-2024-0002" not in by_id  # Debian 11 advisory
    assert "DWTEST-2024-0003" not in by_id  # fixed before the installed version
    if not fixture_image["go_skip"]:
        assert "GO-2023-1751" in by_id  # Go 1.19.8 stdlib < 1.19.9
        # The same stdlib in two binaries: two affected locations, two findings.
        go = [m for m in result.matches if m.vuln_id == "GO-2023-1751"]
        assert sorted(loc for m in go for loc in m.package.locations) == [
            "/srv/app/server",
            "/usr/local/bin/worker",
        ]
        found = [r for r in result.report.results if r.rule.id == "GO-2023-1751"]
        assert len(found) == 2
        assert {dict(r.evidence)["locations"] for r in found} == {
            "/srv/app/server",
            "/usr/local/bin/worker",
        }
    assert "GO-2020-0001" not in by_id
    failing = {r.rule.id for r in result.report.results if r.status is Status.FAIL}
    assert {"DW-I101", "DW-I102", "DW-I103", "DW-I104", "DW-I002"} <= failing
    assert "DW-I001" not in failing  # USER 1000
    secret = next(r for r in result.report.results if r.rule.id == "DW-I102")
    assert "deleted later" in secret.message and "hunter2" not in secret.message
    assert result.worst is Severity.CRITICAL
    assert result.counts()["critical"] >= 1
    summary = cache.lookup(fixture_image["id"])
    assert summary is not None and summary.worst is Severity.CRITICAL
    assert cache.lookup("sha256:" + "0" * 64) is None


def test_cli_scan_formats_waivers_and_exit_codes(
    fixture_image: dict[str, Any], vulndb: Path, tmp_path: Path
) -> None:
    archive = str(fixture_image["archive"])
    r = run_cli("scan", "--archive", archive, "--db", str(vulndb), "-f", "json", "--no-cache")
    assert r.code == 1, r.err
    doc = json.loads(r.out)
    ids = {v["id"] for v in doc["extra"]["vulnerabilities"]}
    assert "PYSEC-2023-74" in ids
    ignore = tmp_path / "ignore.yaml"
    ignore.write_text(
        "ignore:\n"
        "  - id: CVE-2023-45853\n    reason: minizip is not shipped\n    expires: 2999-01-01\n"
        "  - id: PYSEC-2023-74\n    reason: expired waiver\n    expires: 2020-01-01\n"
    )
    vex = tmp_path / "vex.json"
    vex.write_text(
        json.dumps(
            {
                "@context": "https://openvex.dev/ns/v0.2.0",
                "statements": [
                    {
                        "vulnerability": {"name": "PYSEC-2022-42969"},
                        "products": [{"@id": "pkg:pypi/py"}],
                        "status": "not_affected",
                        "justification": "vulnerable_code_not_in_execute_path",
                    }
                ],
            }
        )
    )
    r = run_cli(
        "scan",
        "--archive",
        archive,
        "--db",
        str(vulndb),
        "-f",
        "json",
        "--no-cache",
        "--ignore-file",
        str(ignore),
        "--vex",
        str(vex),
        "--fail-on",
        "critical",
    )
    doc = json.loads(r.out)
    waived = {v["id"]: v["waived"] for v in doc["extra"]["vulnerabilities"]}
    assert waived["DWTEST-2023-45853"].startswith("ignored: minizip")
    assert waived["PYSEC-2022-42969"].startswith("VEX not_affected")
    assert waived["PYSEC-2023-74"] == ""  # expired: not applied, and said so
    assert any("expired" in w for w in doc["warnings"])
    assert r.code == 0, "the only critical finding is waived"
    r = run_cli(
        "scan",
        "--archive",
        archive,
        "--db",
        str(vulndb),
        "--ignore-unfixed",
        "-f",
        "table",
        "--no-cache",
        "--fail-on",
        "never",
    )
    assert r.code == 0
    assert "requests" in r.out and "2.31.0" in r.out and "DWTEST-2023-45853" not in r.out
    r = run_cli("sbom", "--archive", archive, "-f", "cyclonedx")
    bom = json.loads(r.out)
    assert bom["specVersion"] == "1.6" and any(
        c.get("purl") == "pkg:pypi/requests@2.25.0" for c in bom["components"]
    )
    refs = [c["bom-ref"] for c in bom["components"]]
    assert len(refs) == len(set(refs))  # one component per package copy, unique refs
    if not fixture_image["go_skip"]:
        r = run_cli(
            "scan", "--archive", archive, "--db", str(vulndb), "-f", "cyclonedx", "--no-cache"
        )
        bom = json.loads(r.out)
        stdlib = {
            c["bom-ref"]
            for c in bom["components"]
            if c.get("purl", "").startswith("pkg:golang/stdlib@")
        }
        assert len(stdlib) == 2  # /srv/app/server and /usr/local/bin/worker
        [go] = [v for v in bom["vulnerabilities"] if v["id"] == "GO-2023-1751"]
        assert {a["ref"] for a in go["affects"]} == stdlib
        r = run_cli(
            "scan",
            "--archive",
            archive,
            "--db",
            str(vulndb),
            "-f",
            "table",
            "--no-cache",
            "--fail-on",
            "never",
        )
        assert "/srv/app/server" in r.out and "/usr/local/bin/worker" in r.out
    r = run_cli("sbom", "--archive", archive, "-f", "spdx")
    spdx = json.loads(r.out)
    assert spdx["spdxVersion"] == "SPDX-2.3" and len(spdx["packages"]) > 10


@pytest.mark.parametrize(
    "args, message",
    [
        (("sbom", "--archive", "/nonexistent.tar"), "cannot open /nonexistent.tar"),
        (("sbom", "--archive", "/etc/hostname"), "not a tar archive"),
        (("sbom", "--oci", "/tmp"), "not an OCI image layout"),
        (("scan", "x", "--db", "/etc/hostname"), "not a dockward vulnerability database"),
        (("scan",), "name an IMAGE"),
        (
            ("scan", "--archive", "/etc/hostname", "--db", "/nonexistent.db"),
            "no vulnerability database",
        ),
    ],
)
def test_cli_errors_are_one_line(args: tuple[str, ...], message: str) -> None:
    r = run_cli(*args)
    assert r.code == 2
    assert message in r.err and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_a_cut_compressed_layer_is_a_one_line_error(
    fixture_image: dict[str, Any], tmp_path: Path, kind: str
) -> None:
    """A docker-save archive (no digests to check) whose biggest layer is compressed, then cut."""
    import gzip
    import io
    import tarfile

    import zstandard

    out = tmp_path / "cut.tar"
    with tarfile.open(fixture_image["archive"]) as src, tarfile.open(out, "w") as dst:
        layers = [m for m in src.getmembers() if m.name.endswith("layer.tar")]
        biggest = max(layers, key=lambda m: m.size)
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None  # type: ignore[union-attr]
            if m.name == biggest.name and data is not None:
                packed = (
                    gzip.compress(data)
                    if kind == "gzip"
                    else zstandard.ZstdCompressor().compress(data)
                )
                data = packed[: len(packed) // 2]
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    r = run_cli("sbom", "--archive", str(out), "--no-layer-cache")
    assert r.code == 2, r.err
    assert biggest.name[:19] in r.err and "Traceback" not in r.err
    assert "truncated" in r.err or "corrupt compressed layer" in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_java_packages_in_an_image_are_matched(
    fixture_image: dict[str, Any], tmp_path: Path
) -> None:
    db = maven_db(tmp_path)
    result = scan_image(
        str(fixture_image["archive"]), db, ScanOptions(source="archive", layer_cache=None)
    )
    hits = [m for m in result.matches if m.vuln_id == "DWTEST-MAVEN-1"]
    assert [(m.package.name, m.package.version, m.fixed) for m in hits] == [
        ("com.fasterxml.jackson.core:jackson-databind", "2.9.10", "2.9.10.1")
    ]
    assert hits[0].package.locations  # the jar it was found in


def test_one_image_scan_is_a_stored_run_of_its_own(
    fixture_image: dict[str, Any], vulndb: Path, tmp_path: Path
) -> None:
    """`scan IMAGE` records its run (it took --store and dropped it before), under the image's
    name: a waiver withdrawn between two scans is a new finding in `report --diff`."""
    store = str(tmp_path / "runs.sqlite")
    ignore = tmp_path / "ignore.yaml"
    ignore.write_text("ignore:\n  - id: PYSEC-2023-74\n    reason: accepted for now\n")
    ref = fixture_image["ref"]
    base = ("scan", ref, "--db", str(vulndb), "--no-cache", "--store", store, "-f", "json")
    first = run_cli(*base, "--ignore-file", str(ignore), "--fail-on", "never")
    assert first.code == 0, first.err
    assert run_cli(*base, "--fail-on", "never").code == 0
    assert run_cli(*base, "--no-store", "--fail-on", "never").code == 0  # not recorded
    res = run_cli("report", "--diff", "--command", "scan", "--store", store, "-f", "json",
                  "--fail-on", "low")  # fmt: skip
    assert res.code == 1, res.err
    [host] = json.loads(res.out)["hosts"]
    assert host["host"] == ref
    assert [f["rule_id"] for f in host["new"]] == ["PYSEC-2023-74"]
    assert host["fixed"] == []
