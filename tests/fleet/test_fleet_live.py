"""A fleet of real engines (unix socket, TCP with TLS, ssh) audited into SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockward.store import open_store
from tests.conftest import run_cli
from tests.fleet.lab import Fleet, start_fleet, stop_fleet
from tests.store.test_exporter import Receiver


@pytest.fixture(scope="module")
def fleet(docker_api: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if os.geteuid() != 0:
        pytest.skip("starting extra dockerd instances and sshd needs root (CI runs as root)")
    f = start_fleet(tmp_path_factory.mktemp("dwfleet"))
    try:
        yield f
    finally:
        stop_fleet(f)


def audit(fleet: Fleet, store: str, *hosts: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    args = ["audit", "-f", "json", "--fail-on", "never", "--store", store, "--timeout", "15"]
    for h in hosts:
        args += ["-H", h]
    res = run_cli(*args, *extra, env=fleet.env(), timeout=180)
    assert res.code == 0, res.err
    return dict(json.loads(res.out))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "fleet.sqlite")
    cluster = request.getfixturevalue("pg_cluster")
    return str(cluster.create_db(f"dwfleet_{os.getpid()}"))


def test_unix_tls_and_ssh_hosts_in_one_run(fleet: Fleet, store_url: str) -> None:
    hosts = (fleet.a.url, fleet.tcp_url, fleet.sshd.url, fleet.hung.url)
    report = audit(
        fleet,
        store_url,
        *hosts,
        extra=("--check", "DW-D003", "--host-timeout", "60", "--retries", "0", "--workers", "2"),
    )
    assert report["hosts"] == list(hosts)
    by_host = {r["host"]: (r["rule_id"], r["status"]) for r in report["results"]}
    assert by_host[fleet.a.url] == ("DW-D003", "pass")
    assert by_host[fleet.tcp_url] == ("DW-D003", "pass")  # read from /info over TLS
    assert by_host[fleet.sshd.url] == ("DW-D003", "pass"), report[
        "warnings"
    ]  # through `docker system dial-stdio`
    assert by_host[fleet.hung.url] == ("DW-N001", "error")
    store = open_store(store_url)
    runs = {r.host: r for r in store.latest()}
    store.close()
    assert set(runs) == set(hosts)
    assert [runs[h].ok for h in hosts] == [True, True, True, False]
    assert "no answer" in runs[fleet.hung.url].error or "timed out" in runs[fleet.hung.url].error


def test_fleet_html_is_the_fleet_page_of_the_run_from_the_store(
    fleet: Fleet, tmp_path: Path
) -> None:
    store = str(tmp_path / "page.sqlite")
    page = tmp_path / "fleet.html"
    args = ["audit", "-f", "html", "-o", str(page), "--fail-on", "never", "--store", store]
    args += ["--check", "DW-D003", "--check", "DW-D001", "-H", fleet.a.url, "-H", fleet.tcp_url]
    res = run_cli(*args, env=fleet.env(), timeout=180)
    assert res.code == 0, res.err
    text = page.read_text()
    assert "<p>2 hosts, latest run of each." in text and "Per host" in text
    s = open_store(store)
    (batch,) = {r.batch for r in s.runs()}
    assert all(f"<b>{r.host}</b> <small>" in text for r in s.batch_runs(batch))
    s.close()
    # --fail-on reads the run's summary: the exit code the JSON report's results call for
    strict = [a if a != "never" else "info" for a in args]
    res = run_cli(*strict, env=fleet.env(), timeout=180)
    doc = json.loads(
        run_cli(*strict[:2], "json", "-o", "-", *strict[5:], env=fleet.env(), timeout=180).out
    )
    failing = any(r["status"] == "fail" and not r.get("waived") for r in doc["results"])
    assert res.code == (1 if failing else 0), res.err


def test_inventory_host_over_ssh(fleet: Fleet, tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yml"
    inv.write_text(
        "all:\n  children:\n    docker:\n      hosts:\n"
        f"        box-c: {{ansible_host: 127.0.0.1, ansible_user: root, ansible_port: {fleet.sshd.port}}}\n"
        f"        box-b: {{dockward_docker_host: '{fleet.tcp_url}'}}\n"
    )
    store = str(tmp_path / "s.sqlite")
    res = run_cli(
        "audit",
        "--inventory",
        str(inv),
        "--check",
        "DW-D003",
        "-f",
        "json",
        "--fail-on",
        "never",
        "--store",
        store,
        env=fleet.env(),
        timeout=180,
    )
    assert res.code == 0, res.err
    statuses = {r["host"]: r["status"] for r in json.loads(res.out)["results"]}
    assert statuses == {fleet.sshd.url: "pass", fleet.tcp_url: "pass"}
    s = open_store(store)
    assert sorted(r.host for r in s.latest()) == ["box-b", "box-c"]
    s.close()


def test_scan_all_images_of_a_fleet_scans_each_image_once(fleet: Fleet, tmp_path: Path) -> None:
    from dockward.engine import connect, resolve_endpoint
    from dockward.engine.lab import build_busybox_image
    from dockward.vulndb import import_path
    from tests.conftest import FIXTURES, LAB_IMAGE

    a = connect(resolve_endpoint(fleet.a.url))
    c = connect(resolve_endpoint(fleet.c.url))
    try:
        build_busybox_image(a, LAB_IMAGE)
        c.load_image(b"".join(a.get_image(LAB_IMAGE)))  # the same image id on both hosts
    finally:
        a.close()
        c.close()
    db = tmp_path / "vulndb.sqlite"
    import_path(db, [FIXTURES.parent / "scan" / "fixtures" / "osv"])
    store = str(tmp_path / "scan.sqlite")
    hosts = f"{fleet.a.url},{fleet.sshd.url},{fleet.hung.url}"
    res = run_cli(
        "scan",
        "--all-images",
        "-H",
        hosts,
        "--db",
        str(db),
        "--store",
        store,
        "-f",
        "json",
        "--fail-on",
        "never",
        "--host-timeout",
        "60",
        "--retries",
        "0",
        env=fleet.env(),
        timeout=300,
    )
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["extra"]["images_scanned"] == 1  # the same image id on a and c
    by_host = {r["host"] for r in doc["results"] if r["target"].startswith(f"image {LAB_IMAGE}")}
    assert by_host == {fleet.a.url, fleet.sshd.url}
    assert [r["host"] for r in doc["results"] if r["rule_id"] == "DW-N001"] == [fleet.hung.url]
    s = open_store(store)
    assert sorted((r.host, r.ok) for r in s.latest("scan")) == sorted(
        [(fleet.a.url, True), (fleet.sshd.url, True), (fleet.hung.url, False)]
    )
    s.close()


def test_privileged_container_shows_in_drift_and_a_host_going_down(
    fleet: Fleet, tmp_path: Path
) -> None:
    """Runs last in this module: it kills daemon b."""
    import signal

    from dockward.engine import connect, resolve_endpoint
    from dockward.engine.lab import build_busybox_image

    store = str(tmp_path / "drift.sqlite")
    hosts = (fleet.a.url, fleet.tcp_url, fleet.sshd.url)
    extra = ("--section", "container", "--host-timeout", "20", "--retries", "0")
    audit(fleet, store, *hosts, extra=extra)
    client = connect(resolve_endpoint(fleet.a.url))
    try:
        image = build_busybox_image(client, "dockward-lab/busybox:1.0")
        client.create_container(
            image,
            ["sleep", "1"],
            name="dwfleet-privileged",
            host_config=client.create_host_config(privileged=True),
        )
    finally:
        client.close()
    fleet.b.proc.send_signal(signal.SIGKILL)  # host b goes down
    fleet.b.proc.wait(10)
    receiver = Receiver()
    try:
        report = audit(fleet, store, *hosts, extra=(*extra, "--events", receiver.url))
    finally:
        receiver.close()
    assert {r["host"] for r in report["results"] if r["rule_id"] == "DW-N001"} == {fleet.tcp_url}
    events = {
        (b["rule"], b["hostname"], b["output_fields"].get("dockward.rule_id"))
        for b in receiver.bodies
    }
    assert ("Posture: new failure", fleet.a.url, "DW-C001") in events
    assert ("Posture: host not audited", fleet.tcp_url, None) in events
    assert not any(h == fleet.sshd.url for _, h, _ in events)
    res = run_cli("report", "--diff", "--store", store, "--fail-on", "critical", "-f", "json")
    assert res.code == 1, res.err
    drift = {h["host"]: h for h in json.loads(res.out)["hosts"]}
    new_on_a = {(f["rule_id"], f["target"]) for f in drift[fleet.a.url]["new"]}
    assert ("DW-C001", "container dwfleet-privileged") in new_on_a
    assert drift[fleet.sshd.url]["new"] == [] and drift[fleet.sshd.url]["note"] == ""
    assert drift[fleet.tcp_url]["note"].startswith("latest run failed")
    # the store still has b's earlier, good run
    s = open_store(store)
    assert [r.ok for r in s.runs(host=fleet.tcp_url)] == [True, False]
    s.close()
