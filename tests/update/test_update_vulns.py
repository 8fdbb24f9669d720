"""The vulnerability gate with the real scanner (dockward.scan) and a DB imported from OSV files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.update.conftest import LABEL, PREFIX, Registry, build_version, push
from tests.update.test_update_e2e import _update, events

OSV = Path(__file__).resolve().parent.parent / "fixtures" / "update" / "osv"


def _debian_with(packages: dict[str, str]) -> str:
    """Dockerfile lines: a Debian 12 os-release and a dpkg status file listing `packages`."""
    stanzas = "".join(
        f"Package: {name}\\nStatus: install ok installed\\nVersion: {version}\\n"
        "Architecture: amd64\\n\\n"
        for name, version in packages.items()
    )
    return (
        'RUN ["/bin/busybox", "sh", "-c", "mkdir -p /var/lib/dpkg /etc && '
        "printf 'ID=debian\\\\nVERSION_ID=12\\\\n' > /etc/os-release && "
        f"printf '{stanzas}' > /var/lib/dpkg/status\"]\n"
    )


@pytest.fixture(scope="session")
def vuln_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dockward.vulndb import import_path

    path = tmp_path_factory.mktemp(f"{PREFIX}-db") / "vulndb.sqlite"
    import_path(path, [OSV])
    return path


def test_update_adding_a_critical_vulnerability_is_refused(
    clean: Any, registry: Registry, tmp_path: Path, vuln_db: Path
) -> None:
    client = clean
    old = build_version(client, "v1-vulnb", extra=_debian_with({"dwupd-lib": "1.0-1"}))
    worse = build_version(
        client, "v2-vulnb", extra=_debian_with({"dwupd-lib": "1.1-1", "dwupd-demo": "1.0-1"})
    )
    better = build_version(client, "v3-vulnb", extra=_debian_with({"dwupd-lib": "1.1-1"}))
    repo, name = f"{PREFIX}/vuln", f"{PREFIX}-vuln"
    push(client, old, registry, repo, "stable")
    c = client.create_container(
        registry.ref(repo, "stable"), name=name, labels={**LABEL, "dockward.update": "true"}
    )
    client.start(c["Id"])
    push(client, worse, registry, repo, "stable")
    code, doc, err = _update(tmp_path, "--vuln-db", str(vuln_db), name)
    event = events(doc)[name]
    assert event["status"] == "refused", (event, err)
    assert "adds DWUPD-2026-0001 (critical, dwupd-demo)" in event["reason"]
    assert code == 1
    assert client.inspect_container(name)["Id"] == c["Id"]
    # The next release fixes the old HIGH and adds nothing: it goes through and says what it fixed.
    push(client, better, registry, repo, "stable")
    code, doc, err = _update(tmp_path, "--vuln-db", str(vuln_db), "--vuln-gate", "high", name)
    event = events(doc)[name]
    assert event["status"] == "updated", (event, err)
    assert event["fixed_vulnerabilities"] == ["DWUPD-2026-0002"]
    assert client.inspect_container(name)["Image"] == better
