"""Gates, cleanup, hooks, dependency order, notifications, schedules and API versions."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.update.conftest import LABEL, PREFIX, Registry, build_version, lab_tag, push
from tests.update.test_update_e2e import _update, events

WEBHOOK_PORT, SMTP_PORT = 15820, 15821


def _run(client: Any, ref: str, name: str, **kwargs: Any) -> str:
    labels = {**LABEL, "dockward.update": "true", **kwargs.pop("labels", {})}
    c = client.create_container(ref, name=name, labels=labels, **kwargs)
    client.start(c["Id"])
    return str(c["Id"])


def test_update_that_makes_the_container_run_as_root_is_refused(
    clean: Any, registry: Registry, tmp_path: Path
) -> None:
    client = clean
    safe = build_version(client, "v1-user", extra="USER app\n")
    rooted = build_version(client, "v2-root")
    repo, name = f"{PREFIX}/gated", f"{PREFIX}-gated"
    push(client, safe, registry, repo, "stable")
    cid = _run(client, registry.ref(repo, "stable"), name)
    push(client, rooted, registry, repo, "stable")
    code, doc, err = _update(tmp_path)
    event = events(doc)[name]
    assert event["status"] == "refused", event
    assert "DW-C031" in event["reason"]
    assert code == 1
    assert client.inspect_container(name)["Id"] == cid
    # The same update passes when the gate is switched off.
    code, doc, err = _update(tmp_path, "--rules-gate", "off")
    assert events(doc)[name]["status"] == "updated", err


def test_cleanup_removes_the_unused_old_image(
    clean: Any, registry: Registry, tmp_path: Path
) -> None:
    client = clean
    # An image of this run only: a run killed earlier may have left references (tags, repo
    # digests) to a shared one, and an image referenced elsewhere is rightly not removed.
    version = f"v1-cleanup-{uuid.uuid4().hex[:8]}"
    old = build_version(client, version)
    new = build_version(client, "v2")
    repo, name = f"{PREFIX}/cleanup", f"{PREFIX}-cleanup"
    push(client, old, registry, repo, "stable")
    client.remove_image(lab_tag(version))  # untag: only the registry tag is left
    _run(client, registry.ref(repo, "stable"), name)
    push(client, new, registry, repo, "stable")
    code, doc, err = _update(tmp_path, "--cleanup")
    assert code == 0, err
    assert doc["extra"]["update"]["cycles"][0]["removed_images"] == [old]
    assert not client.images(all=True, filters={"reference": lab_tag(version)})
    with pytest.raises(Exception, match="No such image"):
        client.inspect_image(old)


def test_lifecycle_hooks_run_inside_the_container(
    clean: Any, registry: Registry, tmp_path: Path
) -> None:
    client = clean
    v1, v2 = build_version(client, "v1"), build_version(client, "v2")
    repo = f"{PREFIX}/hooks"
    push(client, v1, registry, repo, "stable")
    hooks = {
        "com.centurylinklabs.watchtower.lifecycle.pre-update": "echo pre-$(cat /version) >> /h/log",
        "dockward.update.post-update": "echo post-$(cat /version) >> /h/log",
    }
    volume = {"binds": {f"{PREFIX}-hooks": {"bind": "/h", "mode": "rw"}}}
    client.remove_volume(f"{PREFIX}-hooks", force=True) if client.volumes(
        filters={"name": f"{PREFIX}-hooks"}
    )["Volumes"] else None
    _run(
        client,
        registry.ref(repo, "stable"),
        f"{PREFIX}-hooks",
        labels=hooks,
        host_config=client.create_host_config(**volume),
    )
    skip = {"dockward.update.pre-update": "exit 75"}
    skip_id = _run(client, registry.ref(repo, "stable"), f"{PREFIX}-hooks-skip", labels=skip)
    push(client, v2, registry, repo, "stable")
    _, doc, err = _update(tmp_path, "--enable-lifecycle-hooks")
    assert events(doc)[f"{PREFIX}-hooks"]["status"] == "updated", err
    assert events(doc)[f"{PREFIX}-hooks-skip"]["status"] == "skipped"
    assert client.inspect_container(f"{PREFIX}-hooks-skip")["Id"] == skip_id
    exec_id = client.exec_create(f"{PREFIX}-hooks", ["cat", "/h/log"])["Id"]
    assert client.exec_start(exec_id).decode().split() == ["pre-v1", "post-v2"], (
        doc,
        client.inspect_container(f"{PREFIX}-hooks")["Mounts"],
    )


def test_dependency_order_and_label_selection(
    clean: Any, registry: Registry, tmp_path: Path
) -> None:
    client = clean
    v1, v2 = build_version(client, "v1"), build_version(client, "v2")
    repo = f"{PREFIX}/deps"
    push(client, v1, registry, repo, "stable")
    ref = registry.ref(repo, "stable")
    compose = {"com.docker.compose.project": PREFIX, "dockward.update.scope": PREFIX}
    _run(
        client,
        ref,
        f"{PREFIX}-a-web",
        labels={
            **compose,
            "com.docker.compose.service": "web",
            "com.docker.compose.depends_on": "api:service_started:false",
        },
    )
    _run(
        client,
        ref,
        f"{PREFIX}-b-api",
        labels={
            **compose,
            "com.docker.compose.service": "api",
            "com.centurylinklabs.watchtower.depends-on": f"{PREFIX}-c-db",
        },
    )
    _run(client, ref, f"{PREFIX}-c-db", labels={"dockward.update.scope": PREFIX})
    _run(
        client,
        ref,
        f"{PREFIX}-d-off",
        labels={"com.centurylinklabs.watchtower.enable": "false", "dockward.update.scope": PREFIX},
    )
    _run(
        client,
        ref,
        f"{PREFIX}-e-watch",
        labels={
            "com.centurylinklabs.watchtower.monitor-only": "true",
            "dockward.update.scope": PREFIX,
            "dockward.update.depends-on": f"{PREFIX}-c-db",
        },
    )
    push(client, v2, registry, repo, "stable")
    _, doc, err = _update(tmp_path, "--all", "--scope", PREFIX, "--monitor-only")
    order = [e["container"] for e in doc["extra"]["update"]["cycles"][0]["events"]]
    ours = [n for n in order if n.startswith(PREFIX)]
    assert sorted(ours) == [f"{PREFIX}-{n}" for n in ("a-web", "b-api", "c-db", "e-watch")]
    # Dependencies first: db before api (watchtower depends-on), api before web (compose).
    assert (
        ours.index(f"{PREFIX}-c-db") < ours.index(f"{PREFIX}-b-api") < ours.index(f"{PREFIX}-a-web")
    )
    assert all(events(doc)[n]["status"] == "outdated" for n in ours)
    # Without --monitor-only: the label keeps e-watch on its image, the rest update in order.
    _, doc, err = _update(
        tmp_path, *(f"{PREFIX}-{n}" for n in ("a-web", "b-api", "c-db", "e-watch"))
    )
    got = {n: e["status"] for n, e in events(doc).items()}
    # e-watch stays on its image but depends on c-db, so it is restarted after c-db's update.
    assert doc["extra"]["update"]["cycles"][0]["restarted_dependents"] == [f"{PREFIX}-e-watch"]
    assert got == {
        f"{PREFIX}-c-db": "updated",
        f"{PREFIX}-b-api": "updated",
        f"{PREFIX}-a-web": "updated",
        f"{PREFIX}-e-watch": "outdated",
    }, err


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[list[dict[str, Any]]]:
    server = HTTPServer(("127.0.0.1", WEBHOOK_PORT), _Hook)
    _Hook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield _Hook.received
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp() -> Iterator[list[Any]]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    mails: list[Any] = []

    class Collect(Message):
        def handle_message(self, message: Any) -> None:
            mails.append(message)

    controller = Controller(Collect(), hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    yield mails
    controller.stop()


def test_notifications_reach_webhook_smtp_and_stdout(
    clean: Any, registry: Registry, tmp_path: Path, webhook: list[dict[str, Any]], smtp: list[Any]
) -> None:
    client = clean
    v1, v2 = build_version(client, "v1"), build_version(client, "v2")
    repo, name = f"{PREFIX}/notify", f"{PREFIX}-notify"
    push(client, v1, registry, repo, "stable")
    _run(client, registry.ref(repo, "stable"), name)
    new_digest = push(client, v2, registry, repo, "stable")
    res = run_cli(
        "update",
        "--once",
        "--state-dir",
        str(tmp_path),
        "--stop-timeout",
        "1",
        "--min-uptime",
        "1",
        "--format",
        "json",
        "-o",
        str(tmp_path / "report.json"),
        name,
        "--notify",
        f"http://127.0.0.1:{WEBHOOK_PORT}/hook",
        "--notify",
        f"smtp://127.0.0.1:{SMTP_PORT}?from=dockward@example.test&to=ops@example.test",
        "--notify",
        "stdout",
    )
    assert res.code == 0, res.err
    assert "1 updated" in res.out and new_digest in res.out
    assert len(webhook) == 1
    event = webhook[0]["events"][0]
    assert event["container"] == name and event["status"] == "updated"
    assert event["new_digest"] == new_digest and event["new_image_id"] == v2
    assert len(smtp) == 1
    assert smtp[0]["To"] == "ops@example.test" and "1 updated" in smtp[0]["Subject"]
    parts = [p.get_payload(decode=True).decode() for p in smtp[0].walk() if not p.is_multipart()]
    assert any(new_digest in text for text in parts)
    # Nothing changed: nothing is sent.
    res = run_cli(
        "update",
        "--once",
        "--state-dir",
        str(tmp_path),
        "--format",
        "json",
        name,
        "--notify",
        f"http://127.0.0.1:{WEBHOOK_PORT}/hook",
    )
    assert res.code == 0 and len(webhook) == 1


def test_schedule_and_interval_run_several_cycles(clean: Any, tmp_path: Path) -> None:
    for flags in (["--schedule", "*/1 * * * * *"], ["--interval", "0.3"]):
        res = run_cli(
            "update",
            *flags,
            "--cycles",
            "2",
            "--state-dir",
            str(tmp_path),
            "--format",
            "json",
            f"{PREFIX}-none",
        )
        assert res.code == 0, res.err
        assert len(json.loads(res.out)["extra"]["update"]["cycles"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--schedule", "61 * * * *"], "--schedule: invalid cron expression"),
        (["--schedule", "* * *"], "expected 5 or 6 cron fields"),
        (["--interval", "5", "--schedule", "* * * * *"], "exclude each other"),
        (["--api-version", "9.99"], "--api-version 9.99: the engine speaks API"),
        (["--api-version", "latest"], "expected auto or MAJOR.MINOR"),
        (["--notify", "ftp://x"], "unknown scheme ftp://"),
        (["--notify", "teams://g@t/a/o"], "teams://: Microsoft retired"),
        (["--notification-template", "{{if .Report}}"], "without {{end}}"),
        (["--rules-gate", "severe"], "--rules-gate: unknown severity"),
        (["--vuln-gate", "high", "--vuln-db", "/nonexistent/db"], "--vuln-gate high:"),
    ],
)
def test_bad_flags_are_one_line_errors(
    docker_api: Any, tmp_path: Path, args: list[str], message: str
) -> None:
    res = run_cli("update", "--once", "--state-dir", str(tmp_path), *args)
    assert res.code == 2
    assert message in res.err and res.err.count("\n") == 1, res.err
    assert res.out == ""


def test_pinned_api_version_inside_the_engine_range_works(
    clean: Any, registry: Registry, tmp_path: Path
) -> None:
    client = clean
    v1 = build_version(client, "v1")
    push(client, v1, registry, f"{PREFIX}/api", "stable")
    _run(client, registry.ref(f"{PREFIX}/api", "stable"), f"{PREFIX}-api")
    code, doc, err = _update(tmp_path, "--api-version", "1.30", f"{PREFIX}-api")
    assert code == 0, err
    assert doc["extra"]["update"]["api_version"] == "1.30"
    assert events(doc)[f"{PREFIX}-api"]["status"] == "current"
    # Without dockward.scan or a DB, the default vulnerability gate says why it is off.
    assert any(w.startswith("vulnerability gate off:") for w in doc["warnings"])


def test_stopped_container_is_recreated_but_not_started(
    clean: Any, registry: Registry, tmp_path: Path
) -> None:
    client = clean
    v1, v2 = build_version(client, "v1"), build_version(client, "v2")
    repo, name = f"{PREFIX}/stopped", f"{PREFIX}-stopped"
    push(client, v1, registry, repo, "stable")
    c = client.create_container(
        registry.ref(repo, "stable"), name=name, labels={**LABEL, "dockward.update": "true"}
    )
    push(client, v2, registry, repo, "stable")
    code, doc, err = _update(tmp_path, name)
    assert code == 0 and name not in events(doc), err  # stopped: not managed by default
    code, doc, err = _update(tmp_path, "--include-stopped", name)
    assert events(doc)[name]["status"] == "updated", err
    now = client.inspect_container(name)
    assert now["Id"] != c["Id"] and now["Image"] == v2 and not now["State"]["Running"]


def test_keep_old_keeps_each_previous_container_stopped(
    clean: Any, registry: Registry, tmp_path: Path
) -> None:
    client = clean
    v1, v2 = build_version(client, "v1"), build_version(client, "v2")
    repo, name = f"{PREFIX}/keep", f"{PREFIX}-keep"
    push(client, v1, registry, repo, "stable")
    first = _run(client, registry.ref(repo, "stable"), name)
    push(client, v2, registry, repo, "stable")
    code, doc, err = _update(tmp_path, "--keep-old", name)
    assert code == 0, (err, events(doc))
    assert events(doc)[name]["status"] == "updated", err
    kept = client.inspect_container(f"{name}-dockward-old-{first[:12]}")
    assert kept["Id"] == first and not kept["State"]["Running"]
    second = client.inspect_container(name)["Id"]
    push(client, v1, registry, repo, "stable")  # a "rollback release": the tag moves back
    _, doc, err = _update(tmp_path, "--keep-old", name)
    assert events(doc)[name]["status"] == "updated", err
    assert client.inspect_container(f"{name}-dockward-old-{second[:12]}")["Image"] == v2
    assert client.inspect_container(name)["Image"] == v1


def test_bad_environment_is_a_one_line_error(tmp_path: Path) -> None:
    broken = tmp_path / "cfg"
    broken.mkdir()
    (broken / "config.json").write_text("{oops")
    res = run_cli(
        "update", "--once", "--state-dir", str(tmp_path / "s"), "--docker-config", str(broken)
    )
    assert res.code == 2 and "not valid JSON" in res.err and res.err.count("\n") == 1
    res = run_cli(
        "update",
        "--once",
        "--state-dir",
        str(tmp_path / "s"),
        "--host",
        f"unix://{tmp_path}/no-daemon.sock",
    )
    assert res.code == 2 and "cannot reach the Docker daemon" in res.err
    assert res.err.count("\n") == 1 and res.out == ""


def test_admission_policy_gate(clean: Any, registry: Registry, tmp_path: Path) -> None:
    client = clean
    v1, v2 = build_version(client, "v1"), build_version(client, "v2")
    repo, name = f"{PREFIX}/policy", f"{PREFIX}-policy"
    push(client, v1, registry, repo, "stable")
    cid = _run(client, registry.ref(repo, "stable"), name)
    push(client, v2, registry, repo, "stable")
    strict = tmp_path / "strict.yaml"
    strict.write_text(
        "version: 1\nadmission:\n  deny: [privileged]\n"
        "  images:\n    registries: [registry.example.com]\n"
    )
    code, doc, err = _update(tmp_path / "s", "--policy", str(strict), name)
    event = events(doc)[name]
    assert event["status"] == "refused" and "DW-P005" in event["reason"], (event, err)
    assert code == 1 and client.inspect_container(name)["Id"] == cid
    allowed = tmp_path / "allowed.yaml"
    allowed.write_text(
        "version: 1\nadmission:\n  deny: [privileged]\n"
        f'  images:\n    registries: ["{registry.host}"]\n'
    )
    code, doc, err = _update(tmp_path / "s", "--policy", str(allowed), name)
    assert events(doc)[name]["status"] == "updated", err
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nadmission: {nonsense: 1}\n")
    res = run_cli("update", "--once", "--state-dir", str(tmp_path / "s"), "--policy", str(bad))
    assert res.code == 2 and res.err.count("\n") == 1, res.err
