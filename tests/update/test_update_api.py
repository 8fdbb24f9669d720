"""Watchtower's HTTP API: /v1/update runs a cycle on request, /v1/metrics, bearer token."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import REPO, run_cli
from tests.update.conftest import LABEL, PREFIX, Registry, build_version, push

PORT = 15830
TOKEN = "s3cret-token-for-the-test"


def _run(client: Any, ref: str, name: str) -> str:
    labels = {**LABEL, "dockward.update": "true"}
    c = client.create_container(ref, name=name, labels=labels)
    client.start(c["Id"])
    return str(c["Id"])


def _wait_port() -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{PORT}/v1/metrics", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("the API did not start")


def _call(path: str, token: str | None = TOKEN, method: str = "POST") -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.request(method, f"http://127.0.0.1:{PORT}{path}", headers=headers, timeout=120)


def _metric(text: str, name: str) -> int:
    return int(
        float(next(line.split()[1] for line in text.splitlines() if line.startswith(name + " ")))
    )


def test_update_runs_on_request_for_the_images_asked(
    clean: Any, registry: Registry, tmp_path: Path
) -> None:
    client = clean
    v1, v2 = build_version(client, "v1"), build_version(client, "v2")
    web_repo, db_repo = f"{PREFIX}/apiweb", f"{PREFIX}/apidb"
    for repo in (web_repo, db_repo):
        push(client, v1, registry, repo, "stable")
    web = _run(client, registry.ref(web_repo, "stable"), f"{PREFIX}-apiweb")
    db = _run(client, registry.ref(db_repo, "stable"), f"{PREFIX}-apidb")
    for repo in (web_repo, db_repo):
        push(client, v2, registry, repo, "stable")
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO / "src"),
        WATCHTOWER_HTTP_API_TOKEN=TOKEN,  # Watchtower's variable works as is
    )
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "dockward", "update",
            "--http-api-update", "--http-api-metrics",
            "--http-api-listen", f"127.0.0.1:{PORT}",
            "--interval", "3600",
            "--state-dir", str(tmp_path),
            "--health-timeout", "20", "--min-uptime", "1", "--stop-timeout", "1",
            "--format", "json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        _wait_port()
        time.sleep(1.0)
        # Polling is off with the update endpoint (no --http-api-periodic-polls): nothing ran.
        assert client.inspect_container(f"{PREFIX}-apiweb")["Id"] == web
        assert _call("/v1/update", token=None).status_code == 401
        assert _call("/v1/update", token="wrong").status_code == 401
        assert _call("/v1/metrics", token="wrong", method="GET").status_code == 401
        assert _call("/v1/nothing").status_code == 404
        assert _call("/v1/update?image=not a ref").status_code == 400
        # Only the web image: db stays on v1.
        res = _call(f"/v1/update?image={registry.ref(web_repo, 'stable')}")
        assert res.status_code == 200, res.text
        doc = res.json()
        assert [u["container"] for u in doc["updated"]] == [f"{PREFIX}-apiweb"]
        assert doc["scanned"] == 1
        assert client.inspect_container(f"{PREFIX}-apiweb")["Id"] != web
        assert client.inspect_container(f"{PREFIX}-apidb")["Id"] == db
        metrics = _call("/v1/metrics", method="GET")
        assert metrics.status_code == 200
        assert metrics.headers["Content-Type"].startswith("text/plain")
        assert _metric(metrics.text, "watchtower_containers_updated") == 1
        assert _metric(metrics.text, "watchtower_scans_total") == 1
        # No filter: every managed container; web is current now, db gets updated.
        doc = _call("/v1/update", method="GET").json()
        assert [u["container"] for u in doc["updated"]] == [f"{PREFIX}-apidb"]
        assert f"{PREFIX}-apiweb" in [c["container"] for c in doc["current"]]
        metrics = _call("/v1/metrics", method="GET").text
        assert _metric(metrics, "watchtower_scans_total") == 2
        assert _metric(metrics, "watchtower_containers_scanned") >= 2
        assert _metric(metrics, "dockward_update_api_requests_total") == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, 1), err
    assert TOKEN not in out + err  # the token is never written anywhere
    report = json.loads(out)
    assert len(report["extra"]["update"]["cycles"]) == 2


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--http-api-update"], {}, "the HTTP API needs a token"),
        (["--http-api-metrics", "--http-api-token", "t", "--http-api-listen", "x"], {},
         "expected HOST:PORT"),
        (["--once", "--http-api-update", "--http-api-token", "t"], {},
         "--once excludes --http-api-update"),
    ],
)  # fmt: skip
def test_api_configuration_errors_are_one_line(
    args: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    res = run_cli("update", "--state-dir", str(tmp_path), *args, env=env)
    assert res.code == 2, res.err
    assert message in res.err and len(res.err.strip().splitlines()) == 1
