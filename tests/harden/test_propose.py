"""`harden`: the proposal passes the shared container rules, works, and is written out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dockward.harden.propose import harden, rule_report, tmpfs_targets
from dockward.harden.runner import Settings, Workload, run_once
from dockward.model.container import ContainerSpec
from dockward.model.finding import Status
from dockward.rules.container import rules as container_rules
from tests.conftest import run_cli
from tests.harden.conftest import PREFIX, writer_workload


def test_tmpfs_targets() -> None:
    assert tmpfs_targets(("/tmp", "/tmp/a", "/var/run/x.pid", "/var/run", "/data/out")) == (
        "/data",
        "/tmp",
        "/var/run",
    )
    assert tmpfs_targets(("/rootfile",)) == ()


def test_writer_is_hardened_and_verified(docker_api: Any, httpd_image: str) -> None:
    w = writer_workload(httpd_image)
    before = ContainerSpec(name="writer", image=w.image, origin="run")
    p = harden(docker_api, w, before, prefix=PREFIX, service=False)
    assert p.verified is True and p.broken_by == ()
    assert p.settings.read_only and "/data" in p.settings.tmpfs
    assert p.settings.cap_drop == ("ALL",)
    # the read-only rootfs alone breaks the writer: the tmpfs is what makes it work
    broken = run_once(docker_api, w, Settings(read_only=True), prefix=PREFIX, service=False)
    assert not broken.ok
    # every shared container rule, judged on the proposal (never re-implemented here)
    report = rule_report(p.after)
    assert len(report.results) >= len(container_rules)
    failing = {r.rule.id for r in report.results if r.status is Status.FAIL}
    before_failing = {r.rule.id for r in rule_report(before).results if r.status is Status.FAIL}
    assert failing < before_failing
    for rid in ("DW-C004", "DW-C012", "DW-C013", "DW-C025", "DW-C027"):
        assert rid in before_failing and rid not in failing


def test_non_root_writer_gets_a_tmpfs_it_owns(docker_api: Any) -> None:
    from dockward.engine.lab import build_busybox_image
    from dockward.harden.propose import tmpfs_owner

    assert tmpfs_owner("1000:1001") == "uid=1000,gid=1001" and tmpfs_owner("0") == ""
    assert tmpfs_owner("app") == "" and tmpfs_owner("1000") == "uid=1000,gid=1000"
    image = f"{PREFIX}/owner-writer:1"
    build_busybox_image(
        docker_api,
        image,
        extra='RUN ["/bin/busybox", "sh", "-c", "mkdir -p /data && chown 1000:1000 /data"]',
        labels={"dockward.test": PREFIX},
    )
    # A non-root service that owns its data directory (chmod needs ownership, as postgres's
    # and sshd's ownership checks do).
    w = Workload(
        image,
        command=("sh", "-c", "echo data > /data/out && chmod 700 /data && cat /data/out"),
        user="1000:1000",
        duration=2,
    )
    before = ContainerSpec(name="owner", image=image, user="1000:1000", origin="run")
    p = harden(docker_api, w, before, prefix=PREFIX, service=False)
    assert p.verified is True, p.steps
    assert p.settings.read_only and p.settings.tmpfs == {"/data": "uid=1000,gid=1000"}
    # A root-owned tmpfs breaks it: the ownership is what makes the read-only proposal work.
    root_owned = Settings(read_only=True, tmpfs={"/data": ""})
    assert not run_once(docker_api, w, root_owned, prefix=PREFIX, service=False).ok


def test_verify_names_the_setting_that_breaks(docker_api: Any, httpd_image: str) -> None:
    from dockward.harden.propose import verify

    w = writer_workload(httpd_image)
    ok, culprits = verify(
        docker_api,
        w,
        Settings(read_only=True, no_new_privileges=True),
        prefix=PREFIX,
        service=False,
    )
    assert ok is False and culprits == ("read-only rootfs",)


def test_cli_harden_writes_the_proposal(docker_api: Any, httpd_image: str, tmp_path: Path) -> None:
    r = run_cli(
        "harden",
        "--image",
        httpd_image,
        "--one-shot",
        "--duration",
        "5",
        "--prefix",
        PREFIX,
        "--out-dir",
        str(tmp_path),
        "--service-name",
        "writer",
        "--json",
        "--",
        "sh",
        "-c",
        "echo data > /data/out",
        timeout=240,
    )
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["verified"] is True and out["score"]["after"] > out["score"]["before"]
    assert out["capabilities"] == {"before": 14, "after": 0}
    assert "--read-only" in out["docker_run"] and "--tmpfs" in out["docker_run"]
    prof = json.loads((tmp_path / "writer-seccomp.json").read_text())
    assert prof["defaultAction"] == "SCMP_ACT_ERRNO"
    assert "read_only: true" in (tmp_path / "compose.override.yml").read_text()
    aa = out["apparmor"]
    assert aa["strict_files"] and aa["executables"] == ["/bin/busybox"]
    assert aa["writable"] == ["/data/**"] and aa["validated"] is not False
    assert "  /data/** rwk,\n" in (tmp_path / "writer.apparmor").read_text()


def test_cli_bad_input_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "p.json"
    bad.write_text(
        '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "NOPE"}]}'
    )
    r = run_cli("profile", "seccomp", "explain", str(bad))
    assert r.code == 2 and "unknown action" in r.err and "Traceback" not in r.err
    r = run_cli("profile", "seccomp", "diff", "default", str(tmp_path / "missing.json"))
    assert r.code == 2 and "cannot read" in r.err
    r = run_cli("harden", "--image", "x", "--duration", "-1", "--out-dir", str(tmp_path))
    assert r.code == 2
    assert list(tmp_path.iterdir()) == [bad]


def test_cli_profile_default_and_explain(tmp_path: Path) -> None:
    r = run_cli("profile", "seccomp", "default", "-o", str(tmp_path / "d.json"))
    assert r.code == 0
    r = run_cli("profile", "seccomp", "explain", str(tmp_path / "d.json"), "--json")
    assert r.code == 0 and json.loads(r.out) == []
    wide = tmp_path / "w.json"
    wide.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {"names": ["read", "mount", "kexec_load"], "action": "SCMP_ACT_ALLOW"}
                ],
            }
        )
    )
    r = run_cli("profile", "seccomp", "explain", str(wide), "--json")
    assert r.code == 1
    got = {e["syscall"]: e["why_default_denies"] for e in json.loads(r.out)}
    assert got == {"mount": "needs CAP_SYS_ADMIN", "kexec_load": "not in Docker's default profile"}
    r = run_cli("profile", "seccomp", "diff", "default", str(wide))
    assert r.code == 1 and "- write" in r.out and "+ mount" in r.out
