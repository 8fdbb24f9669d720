"""Fleet members from hosts files and Ansible inventories; the runner's bound, deadline, retries."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dockward.errors import InputError
from dockward.fleet import FleetHost, FleetOptions, gather, hosts_file, inventory, run_fleet
from tests.conftest import run_cli

INI = """
# web servers
[web]
web1 ansible_host=10.0.0.1 ansible_user=deploy ansible_port=2222
web2 ansible_host=web2.example.org

[db]
db1 dockward_docker_host=tcp://10.0.0.9:2376
pg ansible_host=fd00::5

[web:vars]
ansible_user=ops

[prod:children]
web
db

[all:vars]
ansible_user=admin
"""

YAML = """
all:
  vars:
    ansible_user: admin
  children:
    web:
      vars:
        ansible_user: ops
      hosts:
        web1: {ansible_host: 10.0.0.1, ansible_user: deploy, ansible_port: 2222}
        web2:
          ansible_host: web2.example.org
    db:
      hosts:
        db1:
          dockward_docker_host: tcp://10.0.0.9:2376
        pg: {ansible_host: "fd00::5"}
"""

EXPECTED = {
    "web1": "ssh://deploy@10.0.0.1:2222",
    "web2": "ssh://ops@web2.example.org",
    "db1": "tcp://10.0.0.9:2376",
    "pg": "ssh://admin@[fd00::5]",
}


@pytest.mark.parametrize(("name", "text"), [("inv.ini", INI), ("inv.yml", YAML)])
def test_inventory_maps_ansible_vars_to_ssh(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert {h.name: h.url for h in inventory(str(path))} == EXPECTED
    assert [h.name for h in inventory(str(path), ["web"])] == ["web1", "web2"]
    with pytest.raises(InputError, match="no group nope"):
        inventory(str(path), ["nope"])


def test_yaml_inventory_detected_by_content(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text(YAML)
    assert {h.name: h.url for h in inventory(str(path))} == EXPECTED


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[web]\nweb[1:3]\n", "host ranges"),
        ("[web]\nh1 ansible_user\n", "expected key=value"),
        ("[web]\nh1 ansible_host=a;rm\n", "bad ansible_host"),
        ("[web]\nh1 ansible_user=x$(id)\n", "bad ansible_user"),
        ("[web]\nh1 ansible_port=22x\n", "bad ansible_port"),
        ("[web]\nh1 dockward_docker_host=http://x\n", "not a Docker host URL"),
    ],
)
def test_bad_inventories_are_input_errors(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "inv.ini"
    path.write_text(text)
    with pytest.raises(InputError, match=error):
        inventory(str(path))


def test_hosts_file_and_gather(tmp_path: Path) -> None:
    f = tmp_path / "hosts.txt"
    f.write_text("# fleet\nunix:///run/a.sock\n\nssh://ops@b  # the second\n")
    assert [h.url for h in hosts_file(str(f))] == ["unix:///run/a.sock", "ssh://ops@b"]
    hosts = gather(["unix:///run/a.sock"], ["ctx"], [str(f)], [])
    assert hosts == [
        FleetHost("unix:///run/a.sock", "unix:///run/a.sock"),
        FleetHost("", None, "ctx"),
        FleetHost("ssh://ops@b", "ssh://ops@b"),
    ]
    assert gather([], [], [], []) == [FleetHost("")]
    f.write_text("http://nope\n")
    with pytest.raises(InputError, match=r"hosts.txt:1: 'http://nope' is not a Docker host URL"):
        hosts_file(str(f))


def test_bad_fleet_input_is_one_line_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "hosts.txt"
    f.write_text("ftp://x\n")
    for args in (
        ("--hosts-file", str(f)),
        ("--hosts-file", str(tmp_path / "missing")),
        ("--inventory", str(f)),
        ("--parallel", "0"),
        ("--retention", "soon"),
    ):
        res = run_cli("audit", *args, "-H", "unix:///tmp/dw-none.sock")
        assert res.code == 2 and res.err.count("\n") == 1 and "Traceback" not in res.err, args


def test_runner_bounds_concurrency_and_keeps_going() -> None:
    live, peak = 0, 0
    lock = threading.Lock()

    def job(h: FleetHost) -> str:
        nonlocal live, peak
        with lock:
            live += 1
            peak = max(peak, live)
        time.sleep(0.05)
        with lock:
            live -= 1
        if h.name == "bad":
            raise OSError("engine gone")
        return h.name

    hosts = [FleetHost(f"h{i}") for i in range(12)] + [FleetHost("bad")]
    out = {
        o.host.name: o
        for o in run_fleet(hosts, job, FleetOptions(parallel=3, retries=2, retry_delay=0.01))
    }
    assert peak == 3
    assert out["h5"].value == "h5" and out["h5"].attempts == 1
    assert (
        out["bad"].value is None and out["bad"].error == "engine gone" and out["bad"].attempts == 3
    )


def test_runner_retries_then_succeeds_and_gives_up_at_the_deadline() -> None:
    calls: dict[str, int] = {}

    def job(h: FleetHost) -> str:
        calls[h.name] = calls.get(h.name, 0) + 1
        if h.name == "flaky" and calls[h.name] < 2:
            raise ConnectionError("reset")
        if h.name == "hung":
            time.sleep(30)
        return "ok"

    t = time.monotonic()
    opts = FleetOptions(parallel=4, deadline=1.0, retries=3, retry_delay=0.01)
    out = {o.host.name: o for o in run_fleet([FleetHost("flaky"), FleetHost("hung")], job, opts)}
    assert time.monotonic() - t < 5
    assert out["flaky"].value == "ok" and out["flaky"].attempts == 2
    assert out["hung"].value is None and "no answer within the host deadline" in out["hung"].error
    assert calls["hung"] == 1


def test_sharded_runner_reports_every_host_even_when_a_worker_dies() -> None:
    import os

    from dockward.fleet import run_fleet_sharded

    def job(h: FleetHost) -> tuple[str, int]:
        if h.name == "h5":
            os._exit(3)  # the worker process collecting h5 dies
        return (h.name, os.getpid())

    hosts = [FleetHost(f"h{i}") for i in range(12)]
    out = {o.host.name: o for o in run_fleet_sharded(hosts, job, FleetOptions(parallel=2), 2)}
    assert set(out) == {h.name for h in hosts}
    assert out["h5"].error == "the worker process collecting it died"
    ok = [o for o in out.values() if o.ok]
    assert ok and all(o.value is not None and o.value[1] != os.getpid() for o in ok)
    # the other worker's hosts (even numbers) all came back
    assert all(out[f"h{i}"].ok for i in range(0, 12, 2))
