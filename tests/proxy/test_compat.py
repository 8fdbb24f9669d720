"""docker-socket-proxy's environment variables: same defaults, same meaning, through a real daemon."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import docker.errors
import pytest

from dockward.errors import ConfigError
from dockward.policy.routes import match_request
from dockward.proxy.authz import Caller, CompatAuthorizer, CompatSettings
from dockward.proxy.paths import parse_target
from tests.proxy.conftest import PREFIX, RunningProxy, api_through


def allowed(env: dict[str, str], method: str, path: str) -> bool:
    authz = CompatAuthorizer(CompatSettings.from_env(env))
    t = parse_target(path)
    return authz.decide(Caller(), method, t, match_request(method, t.path, t.query)).allowed


@pytest.mark.parametrize(
    ("env", "method", "path", "expected"),
    [
        ({}, "GET", "/_ping", True),
        ({}, "HEAD", "/_ping", True),
        ({}, "GET", "/v1.41/version", True),
        ({}, "GET", "/v1.41/events", True),
        ({}, "GET", "/v1.41/containers/json", False),
        ({}, "GET", "/v1.41/info", False),
        ({"EVENTS": "0"}, "GET", "/v1.41/events", False),
        ({"CONTAINERS": "1"}, "GET", "/v1.41/containers/json", True),
        ({"CONTAINERS": "1"}, "POST", "/v1.41/containers/create", False),
        ({"CONTAINERS": "1", "POST": "1"}, "POST", "/v1.41/containers/create", True),
        ({"CONTAINERS": "1", "POST": "1"}, "DELETE", "/v1.41/containers/x", True),
        ({"POST": "1"}, "POST", "/v1.41/containers/create", False),
        ({"IMAGES": "1"}, "GET", "/v1.41/images/json", True),
        ({"NETWORKS": "1", "POST": "1"}, "POST", "/v1.41/networks/create", True),
        # ALLOW_* work as named, without POST=1 (docker-socket-proxy's POST gate ran first)
        ({"ALLOW_START": "1"}, "POST", "/v1.41/containers/abc/start", True),
        ({"ALLOW_START": "1"}, "POST", "/v1.41/containers/abc/stop", False),
        ({"ALLOW_STOP": "1"}, "POST", "/v1.41/containers/abc/stop", True),
        ({"ALLOW_RESTARTS": "1"}, "POST", "/v1.41/containers/abc/restart", True),
        ({"ALLOW_RESTARTS": "1"}, "POST", "/v1.41/containers/abc/kill", True),
        ({"ALLOW_RESTARTS": "1"}, "POST", "/v1.41/containers/abc/stop", True),
        ({"ALLOW_RESTARTS": "1"}, "POST", "/v1.41/containers/create", False),
        ({"ALLOW_START": "1"}, "GET", "/v1.41/containers/json", False),
        ({"CONTAINERS": "true"}, "GET", "/v1.41/containers/json", True),
        # reading a container's files is the ARCHIVE section, off even with CONTAINERS=1
        ({"CONTAINERS": "1"}, "GET", "/v1.41/containers/abc/archive?path=/etc", False),
        ({"CONTAINERS": "1"}, "HEAD", "/v1.41/containers/abc/archive?path=/etc", False),
        ({"CONTAINERS": "1"}, "GET", "/v1.41/containers/abc/export", False),
        ({"CONTAINERS": "1"}, "GET", "/v1.41/containers/a/b/export", False),
        ({"CONTAINERS": "1", "POST": "1"}, "GET", "/v1.41/containers/abc/export", False),
        ({"CONTAINERS": "1", "ARCHIVE": "1"}, "GET", "/v1.41/containers/abc/archive", True),
        ({"ARCHIVE": "1"}, "GET", "/v1.41/containers/abc/export", True),
        ({"ARCHIVE": "1"}, "GET", "/v1.41/containers/json", False),
        ({"ARCHIVE": "1"}, "PUT", "/v1.41/containers/abc/archive", False),
        ({"CONTAINERS": "1", "POST": "1"}, "PUT", "/v1.41/containers/abc/archive", True),
        ({"CONTAINERS": "1"}, "GET", "/v1.41/containers/abc/attach/ws?stdin=0", True),
        ({"CONTAINERS": "1"}, "GET", "/v1.41/containers/abc/attach/ws?stdin=1", False),
        ({"CONTAINERS": "1", "POST": "1"}, "GET", "/v1.41/containers/abc/attach/ws?stdin=1", True),
    ],
)
def test_matrix(env: dict[str, str], method: str, path: str, expected: bool) -> None:
    assert allowed(env, method, path) is expected


def test_bad_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="CONTAINERS"):
        CompatSettings.from_env({"CONTAINERS": "maybe"})


def _status(call: Callable[[], Any]) -> int:
    try:
        call()
    except docker.errors.APIError as exc:
        return int(exc.status_code)
    return 200


def test_through_the_daemon(
    proxy_factory: Callable[..., RunningProxy],
    docker_api: Any,
    lab_image: str,
    clean_containers: None,
) -> None:
    cid = docker_api.create_container(
        lab_image, "sleep 30", name=f"{PREFIX}-compat", labels={"dockward.test": PREFIX}
    )["Id"]
    reader = api_through(
        proxy_factory(CompatAuthorizer(CompatSettings.from_env({"CONTAINERS": "1"})))
    )
    assert reader.ping()
    assert any(c["Id"] == cid for c in reader.containers(all=True))
    assert _status(lambda: reader.start(cid)) == 403
    assert _status(lambda: reader.images()) == 403
    assert _status(lambda: reader.create_container(lab_image, "true")) == 403

    env = {"ALLOW_START": "1", "ALLOW_STOP": "1"}
    lifecycle = api_through(proxy_factory(CompatAuthorizer(CompatSettings.from_env(env))))
    lifecycle.start(cid)
    assert docker_api.inspect_container(cid)["State"]["Running"]
    lifecycle.stop(cid, timeout=1)
    assert not docker_api.inspect_container(cid)["State"]["Running"]
    assert _status(lambda: lifecycle.restart(cid)) == 403
    assert _status(lambda: lifecycle.remove_container(cid)) == 403


def test_docker_cli_prints_the_refusal(proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(CompatAuthorizer(CompatSettings.from_env({})))
    out = subprocess.run(
        ["docker", "-H", proxy.url, "network", "ls"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode != 0
    assert "Error response from daemon: section /networks is not enabled" in out.stderr
    ok = subprocess.run(
        ["docker", "-H", proxy.url, "version"], capture_output=True, text=True, timeout=30
    )
    assert ok.returncode == 0 and "Server:" in ok.stdout


def test_archive_and_export_through_the_daemon(
    proxy_factory: Callable[..., RunningProxy],
    docker_api: Any,
    lab_image: str,
    clean_containers: None,
) -> None:
    """CONTAINERS=1 lists and inspects but copies no file out; ARCHIVE=1 opens the copies."""
    cid = docker_api.create_container(
        lab_image, "true", name=f"{PREFIX}-archive", labels={"dockward.test": PREFIX}
    )["Id"]
    ro = api_through(proxy_factory(CompatAuthorizer(CompatSettings.from_env({"CONTAINERS": "1"}))))
    assert ro.inspect_container(cid)["Id"] == cid
    assert _status(lambda: ro.get_archive(cid, "/etc/passwd")) == 403
    assert _status(lambda: b"".join(ro.export(cid))) == 403
    env = {"CONTAINERS": "1", "ARCHIVE": "1"}
    full = api_through(proxy_factory(CompatAuthorizer(CompatSettings.from_env(env))))
    stream, stat = full.get_archive(cid, "/etc/passwd")
    assert stat["name"] == "passwd" and b"root:" in b"".join(stream)
    assert len(b"".join(full.export(cid))) > 10240
