"""Per-client container scoping through the real daemon: a scoped client lists, inspects,
starts, reads logs and events of its own containers only; the others answer 404 as if absent;
what it creates must carry the scope's label."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest

from dockward.errors import ConfigError
from dockward.policy.model import ContainerScope, parse_policy
from dockward.proxy.authz import PolicyAuthorizer
from tests.proxy.conftest import PREFIX, RunningProxy, api_through

RUN = f"{PREFIX}-scope-{os.getpid()}"  # this run's containers, whatever other runs sweep
TEAM = {"dockward.scope": "team-a"}


@pytest.fixture
def two(docker_api: Any, lab_image: str) -> Iterator[tuple[str, str]]:
    """(mine, other): both running `sleep`, only the first in the scope."""
    made = []
    for name, labels in (("mine", TEAM), ("other", {})):
        cid = docker_api.create_container(
            lab_image,
            ["sh", "-c", "echo hello-$HOSTNAME; sleep 60"],
            name=f"{RUN}-{name}-{time.monotonic_ns()}",
            labels={"dockward.test": RUN, **labels},
        )["Id"]
        made.append(cid)
    yield made[0], made[1]
    for c in docker_api.containers(all=True, filters={"label": f"dockward.test={RUN}"}):
        with contextlib.suppress(docker.errors.APIError):
            docker_api.remove_container(c["Id"], force=True)


@pytest.fixture
def scoped(proxy_factory: Callable[..., RunningProxy]) -> RunningProxy:
    policy = {
        "default": {
            "allow": ["ping", "version", "containers.*", "events", "exec.*", "system.df"],
            "scope": {"labels": ["dockward.scope=team-a"]},
        },
        "admission": {"deny": ["privileged"]},
    }
    return proxy_factory(PolicyAuthorizer(parse_policy(policy)))


def _status(call: Callable[[], Any]) -> int:
    try:
        call()
    except docker.errors.APIError as exc:
        return int(exc.status_code)
    return 200


def test_scope_reads_and_actions(
    scoped: RunningProxy, two: tuple[str, str], docker_api: Any
) -> None:
    mine, other = two
    api = api_through(scoped)
    listed = {c["Id"] for c in api.containers(all=True, filters={"label": f"dockward.test={RUN}"})}
    assert listed == {mine}
    assert docker_api.containers(all=True, filters={"label": f"dockward.test={RUN}"})  # both
    assert api.inspect_container(mine)["Id"] == mine
    assert _status(lambda: api.inspect_container(other)) == 404
    assert _status(lambda: api.inspect_container(other[:12])) == 404  # by short id too
    assert _status(lambda: api.start(other)) == 404
    assert not docker_api.inspect_container(other)["State"]["Running"]
    api.start(mine)
    assert docker_api.inspect_container(mine)["State"]["Running"]
    deadline = time.monotonic() + 20
    while b"hello-" not in api.logs(mine) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b"hello-" in api.logs(mine)
    assert _status(lambda: api.logs(other)) == 404
    assert _status(lambda: api.exec_create(other, "true")) == 404
    exec_id = api.exec_create(mine, "true")["Id"]
    assert api.exec_inspect(exec_id)["ContainerID"] == mine
    docker_api.start(other)
    foreign_exec = docker_api.exec_create(other, "true")["Id"]
    assert _status(lambda: api.exec_inspect(foreign_exec)) == 404
    assert _status(lambda: api.exec_start(foreign_exec)) == 404
    assert _status(lambda: api.df()) == 403
    assert _status(lambda: api.prune_containers()) == 403
    denied = [d for d in scoped.decisions() if d.get("rule") == "scope"]
    assert denied and all(d["decision"] == "deny" for d in denied)


def test_scope_events(scoped: RunningProxy, two: tuple[str, str], docker_api: Any) -> None:
    mine, other = two
    since = int(time.time()) - 1
    docker_api.start(mine)
    docker_api.start(other)
    docker_api.kill(mine)
    docker_api.kill(other)
    api = api_through(scoped)
    seen = list(api.events(since=since, until=int(time.time()) + 1, decode=True))
    ids = {e.get("id") for e in seen}
    assert mine in ids and other not in ids, ids
    assert all(e["Type"] == "container" for e in seen)
    # the same stream read directly has both (and more)
    direct = docker_api.events(since=since, until=int(time.time()) + 1, decode=True)
    assert {mine, other} <= {e.get("id") for e in direct}


def test_scope_creates_carry_the_label(
    scoped: RunningProxy, lab_image: str, docker_api: Any
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    base = ["docker", "-H", scoped.url, "create", "--label", f"dockward.test={RUN}"]
    try:
        ok = subprocess.run(
            [*base, "--label", "dockward.scope=team-a", lab_image, "true"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert ok.returncode == 0, ok.stderr
        bad = subprocess.run(
            [*base, lab_image, "true"], capture_output=True, text=True, timeout=60, env=env
        )
        assert bad.returncode != 0 and "must be in its scope" in bad.stderr
        wrong = subprocess.run(
            [*base, "--label", "dockward.scope=team-b", lab_image, "true"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert wrong.returncode != 0
        made = docker_api.containers(all=True, filters={"label": f"dockward.test={RUN}"})
        assert [c["Labels"].get("dockward.scope") for c in made] == ["team-a"]
    finally:
        for c in docker_api.containers(all=True, filters={"label": f"dockward.test={RUN}"}):
            with contextlib.suppress(docker.errors.APIError):
                docker_api.remove_container(c["Id"], force=True)


def test_name_glob_scope(
    proxy_factory: Callable[..., RunningProxy], two: tuple[str, str], docker_api: Any
) -> None:
    mine, other = two
    name = docker_api.inspect_container(other)["Name"].lstrip("/")
    policy = {"default": {"allow": ["containers.*"], "scope": {"names": [f"{RUN}-other-*"]}}}
    api = api_through(proxy_factory(PolicyAuthorizer(parse_policy(policy))))
    assert [c["Names"] for c in api.containers(all=True)] == [[f"/{name}"]]
    assert api.inspect_container(name)["Id"] == other
    assert _status(lambda: api.inspect_container(mine)) == 404


def test_scope_schema() -> None:
    rule = parse_policy({"default": {"allow": ["*"], "scope": {"labels": ["a", "b=c"]}}}).default
    assert rule is not None and rule.scope == ContainerScope((("a", None), ("b", "c")), ())
    assert rule.scope.contains("/x", {"a": "", "b": "c"})
    assert not rule.scope.contains("/x", {"a": "1", "b": "d"})
    with pytest.raises(ConfigError, match="needs labels or names"):
        parse_policy({"default": {"allow": ["*"], "scope": {}}})
    with pytest.raises(ConfigError, match="unknown key"):
        parse_policy({"default": {"allow": ["*"], "scope": {"label": "a"}}})
