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
            "allow": [
                *("ping", "version", "containers.*", "events", "exec.*", "system.df"),
                *("networks.*", "commit"),
            ],
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
    assert _status(lambda: api.exec_resize(foreign_exec, height=10, width=80)) == 404
    assert _status(lambda: docker_api.exec_resize(foreign_exec, height=10, width=80)) != 404
    denied = [d for d in scoped.decisions() if d.get("rule") == "scope"]
    assert denied and all(d["decision"] == "deny" for d in denied)
    started = [d for d in scoped.decisions() if d.get("route") == "containers.start"]
    assert started[-1]["decision"] == "allow" and started[-1]["container"] == mine


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
    globs = [f"{RUN}-other-*", f"{RUN}-a-*"]
    policy = {"default": {"allow": ["containers.*"], "scope": {"names": globs}}}
    api = api_through(proxy_factory(PolicyAuthorizer(parse_policy(policy))))
    assert [c["Names"] for c in api.containers(all=True)] == [[f"/{name}"]]
    # linked, `mine` is listed as /<linker>/<alias> too: its own name decides, not that one
    linker = docker_api.create_container(
        docker_api.inspect_container(mine)["Config"]["Image"],
        ["true"],
        name=f"{RUN}-a-linker-{time.monotonic_ns()}",  # sorts before `mine`
        labels={"dockward.test": RUN},
        host_config=docker_api.create_host_config(links={mine: "peer"}),
    )["Id"]
    listed = {c["Id"] for c in api.containers(all=True)}
    assert listed == {other, linker}
    assert api.inspect_container(name)["Id"] == other
    assert _status(lambda: api.inspect_container(mine)) == 404


def test_scope_schema() -> None:
    rule = parse_policy({"default": {"allow": ["*"], "scope": {"labels": ["a", "b=c"]}}}).default
    assert rule is not None and rule.scope == ContainerScope((("a", None), ("b", "c")), ())
    assert rule.scope.contains("/x", {"a": "", "b": "c"})
    assert not rule.scope.contains("/x", {"a": "1", "b": "d"})
    for key in ("name=web", "exitCode=0", "image"):
        with pytest.raises(ConfigError, match="attribute the engine sets on container events"):
            parse_policy({"default": {"allow": ["*"], "scope": {"labels": [key]}}})
    with pytest.raises(ConfigError, match="needs labels or names"):
        parse_policy({"default": {"allow": ["*"], "scope": {}}})
    with pytest.raises(ConfigError, match="unknown key"):
        parse_policy({"default": {"allow": ["*"], "scope": {"label": "a"}}})


def _cli(proxy: RunningProxy, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    return subprocess.run(
        ["docker", "-H", proxy.url, *args], capture_output=True, text=True, timeout=60, env=env
    )


def _tar(name: str, data: bytes) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# Every route that names a container, as docker-py calls it: (route, call(api, container)).
_CONTAINER_CALLS: list[tuple[str, Callable[[Any, str], Any]]] = [
    ("archive_get", lambda api, c: b"".join(api.get_archive(c, "/etc/hostname")[0])),
    (
        "archive_head",
        lambda api, c: api._raise_for_status(
            api.head(api._url("/containers/{0}/archive", c), params={"path": "/etc"})
        ),
    ),
    ("archive_put", lambda api, c: api.put_archive(c, "/tmp", _tar("dw13b", b"x"))),
    ("export", lambda api, c: next(iter(api.export(c)))),
    ("attach", lambda api, c: api.attach(c, stream=False, logs=True)),
    ("top", lambda api, c: api.top(c)),
    ("stats", lambda api, c: api.stats(c, stream=False)),
    ("changes", lambda api, c: api.diff(c)),
    ("update", lambda api, c: api.update_container(c, cpu_shares=512)),
    ("resize", lambda api, c: api.resize(c, 10, 80)),
    ("pause", lambda api, c: (api.pause(c), api.unpause(c))),
    ("restart", lambda api, c: api.restart(c, timeout=0)),
    ("exec", lambda api, c: api.exec_create(c, "true")),
    ("commit", lambda api, c: api.commit(c, repository=f"{RUN}-commit", tag="x")),
    ("rename", lambda api, c: api.rename(c, f"{RUN}-renamed-{time.monotonic_ns()}")),
    ("wait", lambda api, c: (api.kill(c), api.wait(c, timeout=30))),
    ("remove", lambda api, c: api.remove_container(c, force=True)),
]


def test_scope_every_container_route(
    scoped: RunningProxy, two: tuple[str, str], docker_api: Any
) -> None:
    """Each route naming a container: 404 for a container outside the scope (which is left as
    it was), the daemon's own answer for one inside."""
    mine, other = two
    docker_api.start(mine)
    docker_api.start(other)
    api = api_through(scoped)
    before = docker_api.inspect_container(other)
    for route, call in _CONTAINER_CALLS:
        assert _status(lambda call=call: call(api, other)) == 404, route
    after = docker_api.inspect_container(other)
    assert after["State"]["Running"] and after["Name"] == before["Name"]
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]  # neither restarted
    assert after["HostConfig"]["CpuShares"] == before["HostConfig"]["CpuShares"]
    # the resize of a container without a tty is the daemon's error, not the proxy's 404
    for route, call in _CONTAINER_CALLS:
        status = _status(lambda call=call: call(api, mine))
        assert status == 200 or (route == "resize" and status != 404), (route, status)
    with pytest.raises(docker.errors.NotFound):
        docker_api.inspect_container(mine)
    with contextlib.suppress(docker.errors.APIError):
        docker_api.remove_image(f"{RUN}-commit:x")


def test_scope_refuses_a_reference_the_daemon_would_resolve_later(
    scoped: RunningProxy, docker_api: Any, lab_image: str
) -> None:
    """dockerd takes `NetworkMode: container:<x>` for an <x> that does not exist yet and looks
    it up when the container starts: by then <x> may be a container outside the scope. The proxy
    refuses a reference it cannot resolve into the scope now."""
    later = f"{RUN}-later-{time.monotonic_ns()}"
    labels = ["--label", f"dockward.test={RUN}", "--label", "dockward.scope=team-a"]
    refused = _cli(scoped, "create", *labels, f"--network=container:{later}", lab_image, "true")
    assert refused.returncode != 0 and "No such container in this client's scope" in refused.stderr
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    try:  # the same create straight to the daemon: accepted, and joins what comes later
        direct = subprocess.run(
            ["docker", "create", *labels, f"--network=container:{later}", lab_image, "sleep", "60"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert direct.returncode == 0, direct.stderr
        target = docker_api.create_container(
            lab_image, ["sleep", "60"], name=later, labels={"dockward.test": RUN}
        )["Id"]
        docker_api.start(target)
        docker_api.start(direct.stdout.strip())
        mode = docker_api.inspect_container(direct.stdout.strip())["HostConfig"]["NetworkMode"]
        assert mode == f"container:{later}"
    finally:
        for c in docker_api.containers(all=True, filters={"label": f"dockward.test={RUN}"}):
            with contextlib.suppress(docker.errors.APIError):
                docker_api.remove_container(c["Id"], force=True)


def test_scope_pins_the_resolved_container(
    two: tuple[str, str], docker_api: Any, lab_image: str
) -> None:
    """What the proxy resolved is what the daemon acts on: the request goes on with the full id,
    so a name that moves between the look-up and the action (here: the scoped client's own
    container is renamed away, and the name is the other's id prefix) cannot redirect it."""
    import asyncio

    from dockward.policy.admission import ImageGate
    from dockward.proxy.authz import Caller
    from dockward.proxy.decision import decide

    mine, other = two
    prefix = other[:12]
    docker_api.rename(mine, prefix)
    policy = {
        "default": {"allow": ["containers.*"], "scope": {"labels": ["dockward.scope=team-a"]}}
    }
    authz = PolicyAuthorizer(parse_policy(policy))

    async def lookup(path: str) -> Any:
        info = docker_api._result(docker_api._get(docker_api.base_url + path), True)
        docker_api.rename(mine, f"{RUN}-moved")  # the race: the name moves once looked up
        return info

    d = asyncio.run(
        decide(
            authz, ImageGate(), None, Caller(), "POST", f"/v1.41/containers/{prefix}/start", lookup
        )
    )  # type: ignore[arg-type]
    assert d.allowed and d.target is not None
    assert d.target.raw == f"/v1.41/containers/{mine}/start"
    assert docker_api.inspect_container(prefix)["Id"] == other  # what the name now reaches


@pytest.mark.parametrize(
    "flag",
    [
        *("--network=container:{}", "--pid=container:{}", "--ipc=container:{}"),
        *("--volumes-from={}", "--volumes-from={}:ro", "--link={}:peer", "--link={}"),
    ],
)
def test_scope_create_cannot_reach_other_containers(
    scoped: RunningProxy, two: tuple[str, str], docker_api: Any, lab_image: str, flag: str
) -> None:
    """Joining a namespace, mounting the volumes or linking (which copies the environment) of
    a container outside the scope is refused (403, the same as for one that does not exist);
    of one inside, allowed and stored by full id."""
    mine, other = two
    docker_api.start(mine)
    docker_api.start(other)
    other_name = docker_api.inspect_container(other)["Name"].lstrip("/")
    mine_name = docker_api.inspect_container(mine)["Name"].lstrip("/")
    base = ["create", "--label", f"dockward.test={RUN}", "--label", "dockward.scope=team-a"]
    for ref in (other_name, other[:12], other):
        bad = _cli(scoped, *base, flag.format(ref), lab_image, "true")
        assert bad.returncode != 0, bad.stderr
        assert f"No such container in this client's scope: {ref}" in bad.stderr, bad.stderr
    assert len(docker_api.containers(all=True, filters={"label": f"dockward.test={RUN}"})) == 2
    ok = _cli(scoped, *base, flag.format(mine_name), lab_image, "true")
    assert ok.returncode == 0, ok.stderr
    hc = docker_api.inspect_container(ok.stdout.strip())["HostConfig"]
    stored = {
        "--network": hc["NetworkMode"],
        "--pid": hc["PidMode"],
        "--ipc": hc["IpcMode"],
        "--volumes-from": " ".join(hc["VolumesFrom"] or []),
        "--link": " ".join(hc["Links"] or []),
    }[flag.split("=")[0]]
    if flag.startswith("--link"):  # the daemon keeps a link by the name of what it resolved
        assert stored.startswith(f"/{mine_name}:"), stored
    else:
        assert mine in stored and mine_name not in stored, stored


def _raw(proxy: RunningProxy, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(30)
            self.sock.connect(proxy.socket)

    conn = Conn("docker")
    try:
        conn.request(method, path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture
def network(docker_api: Any) -> Iterator[str]:
    name = f"{RUN}-net-{time.monotonic_ns()}"
    docker_api.create_network(name, labels={"dockward.test": RUN})
    yield name
    attached: dict[str, Any] = {}
    with contextlib.suppress(docker.errors.APIError):
        attached = docker_api.inspect_network(name)["Containers"] or {}
    for cid in attached:  # each on its own: one already gone must not keep the network
        with contextlib.suppress(docker.errors.APIError):
            docker_api.disconnect_container_from_network(cid, name, force=True)
    with contextlib.suppress(docker.errors.APIError):
        docker_api.remove_network(name)


def test_scope_network_connect(
    scoped: RunningProxy, two: tuple[str, str], docker_api: Any, network: str
) -> None:
    mine, other = two
    other_name = docker_api.inspect_container(other)["Name"].lstrip("/")
    mine_name = docker_api.inspect_container(mine)["Name"].lstrip("/")

    def attached() -> set[str]:
        return set(docker_api.inspect_network(network)["Containers"] or {})

    docker_api.start(mine)
    docker_api.start(other)
    bad = _cli(scoped, "network", "connect", network, other_name)
    assert bad.returncode != 0 and f"No such container: {other_name}" in bad.stderr
    assert _cli(scoped, "network", "connect", network, other[:12]).returncode != 0
    assert attached() == set()
    ok = _cli(scoped, "network", "connect", "--alias", "web", network, mine_name)
    assert ok.returncode == 0, ok.stderr
    assert attached() == {mine}
    docker_api.connect_container_to_network(other, network)
    assert attached() == {mine, other}
    bad = _cli(scoped, "network", "disconnect", network, other_name)
    assert bad.returncode != 0 and "No such container" in bad.stderr
    assert _cli(scoped, "network", "disconnect", network, mine_name).returncode == 0
    assert attached() == {other}
    # the legacy links of the endpoint name containers too
    api = api_through(scoped)
    with pytest.raises(docker.errors.APIError) as err:
        api.connect_container_to_network(mine, network, links=[(other_name, "peer")])
    assert err.value.status_code == 403 and "EndpointConfig.Links[0]" in str(err.value)
    api.connect_container_to_network(mine, network, links=[(mine_name, "self")])
    assert attached() == {mine, other}
    # a network's endpoints: its own containers only
    seen = api.inspect_network(network)
    assert set(seen["Containers"]) == {mine} and seen["Name"] == network
    assert _cli(scoped, "network", "inspect", "-f", "{{len .Containers}}", network).stdout == "1\n"
    # bodies: bounded, JSON objects naming a Container, read as Go reads them
    path = f"/v1.41/networks/{network}/disconnect"
    cases = [
        (b"", 400, b"cannot read the body"),
        (b"not json", 400, b"cannot read the body"),
        (b"[]", 400, b"must be a JSON object"),
        (b"{}", 400, b"must name a Container"),
        (b'{"Container": 7}', 400, b"must name a Container"),
        (b'{"Container":"%s","container":"%s"}' % (mine.encode(), other.encode()), 400, b"more"),
        (b'{"Container":"%s"}{}' % mine.encode(), 400, b"cannot read the body"),
        (b'{"Container":"%s","x":"%s"}' % (mine.encode(), b"a" * 70000), 413, b"larger"),
        (b'{"container":"%s"}' % other.encode(), 404, b"No such container"),
    ]
    for body, status, message in cases:
        got, answer = _raw(scoped, "POST", path, body)
        assert (got, message in answer) == (status, True), (body[:60], got, answer)
    assert attached() == {mine, other}
    got, answer = _raw(scoped, "POST", path, b'{"CONTAINER":"%s"}' % mine_name.encode())
    assert got == 200, answer
    assert attached() == {other}
    # what the proxy writes back is what Go reads: a lone surrogate escape stays an escape
    body = b'{"Container":"%s","EndpointConfig":{"Aliases":["\\ud800x"]}}' % mine_name.encode()
    got, answer = _raw(scoped, "POST", f"/v1.41/networks/{network}/connect", body)
    assert got == 200, answer
    assert attached() == {mine, other}


def test_scope_network_prune_refused(scoped: RunningProxy, docker_api: Any, network: str) -> None:
    api = api_through(scoped)
    with pytest.raises(docker.errors.APIError) as err:
        api.prune_networks(filters={"label": f"dockward.test={RUN}"})
    assert err.value.status_code == 403 and "networks.prune" in str(err.value)
    assert docker_api.inspect_network(network)["Name"] == network


def test_scope_container_prune(
    proxy_factory: Callable[..., RunningProxy], docker_api: Any, lab_image: str
) -> None:
    """The scope's labels go into the prune's own filters: a stopped container of this run
    outside the scope stays, whatever filters the client sends."""
    team = f"dockward.scope13-{os.getpid()}"
    policy = {
        "clients": [],
        "default": {"allow": ["containers.*"], "scope": {"labels": [f"{team}=a"]}},
    }
    scoped = proxy_factory(PolicyAuthorizer(parse_policy(policy)))
    named = proxy_factory(
        PolicyAuthorizer(
            parse_policy(
                {
                    "default": {
                        "allow": ["containers.*"],
                        "scope": {"labels": [team], "names": ["x*"]},
                    }
                }
            )
        )
    )
    run = {"dockward.test": RUN}
    made = {
        key: docker_api.create_container(lab_image, ["true"], labels={**run, **labels})["Id"]
        for key, labels in {
            "mine": {team: "a"},
            "mine-other-value": {team: "b"},
            "other": {},
        }.items()
    }
    try:
        api = api_through(scoped)
        with pytest.raises(docker.errors.APIError) as err:
            api_through(named).prune_containers(filters={"label": f"dockward.test={RUN}"})
        assert err.value.status_code == 403 and "by name" in str(err.value)
        with pytest.raises(docker.errors.APIError) as err:
            api.prune_containers(filters={"label": "x"} | {"until": "1h"} | {"bad": "["})
        assert err.value.status_code == 400  # the daemon's refusal of an unknown filter
        # the client's own filter (legacy list form) narrows to this run; the scope does the rest
        gone = api.prune_containers(filters={"label": [f"dockward.test={RUN}"]})
        assert gone["ContainersDeleted"] == [made["mine"]]
        left = {
            c["Id"]
            for c in docker_api.containers(all=True, filters={"label": f"dockward.test={RUN}"})
        }
        assert left == {made["mine-other-value"], made["other"]}
        decisions = [d for d in scoped.decisions() if d.get("route") == "containers.prune"]
        assert decisions[-1]["decision"] == "allow"
    finally:
        for cid in made.values():
            with contextlib.suppress(docker.errors.APIError):
                docker_api.remove_container(cid, force=True)


def test_prune_filters_read_as_dockerd_reads_them() -> None:
    """The scope's labels join the client's filters in either of dockerd's forms; what dockerd
    could read another way, or not at all, is refused."""
    from dockward.proxy.paths import parse_target
    from dockward.proxy.scope import ScopeRefusal, prune_target

    scope = ContainerScope((("team", "a"), ("managed", None)), ())

    def forwarded(query: str) -> Any:
        import json
        from urllib.parse import parse_qs, urlsplit

        target = prune_target(scope, parse_target(f"/v1.41/containers/prune{query}"))
        assert target.path == "/containers/prune" and target.raw.startswith("/v1.41/")
        return json.loads(parse_qs(urlsplit(target.raw).query)["filters"][0])

    both = {"team=a": True, "managed": True}
    assert forwarded("") == {"label": both}
    assert forwarded('?filters={"until":{"1h":true}}') == {"until": {"1h": True}, "label": both}
    assert forwarded('?filters={"label":["x=1"]}') == {"label": {"x=1": True, **both}}
    # every value counts in dockerd's map form, whatever its bool
    assert forwarded('?filters={"label":{"x":false}}') == {"label": {"x": True, **both}}
    assert forwarded("?filters=null") == {"label": both}
    for bad in (
        "?filters=not-json",
        '?filters={"label":"x"}',
        '?filters={"label":["x"],"until":{"1h":true}}',
        '?filters={"label":["x"],"label":["y"]}',
        "?filters=[]",
        "?filters={}&filters={}",
    ):
        with pytest.raises(ScopeRefusal) as err:
            prune_target(scope, parse_target(f"/v1.41/containers/prune{bad}"))
        assert err.value.status == 400, bad
    with pytest.raises(ScopeRefusal, match="by name") as err:
        prune_target(ContainerScope((), ("web-*",)), parse_target("/containers/prune"))
    assert err.value.status == 403


def test_scope_system_df(scoped: RunningProxy, docker_api: Any, lab_image: str) -> None:
    """df for a scoped client: its containers, the volumes they mount (or that carry the
    scope's labels), every image with its container count counting the client's only."""
    vols = {k: f"{RUN}-{k}-{time.monotonic_ns()}" for k in ("mine", "other", "labelled", "loose")}
    for key, name in vols.items():
        labels = {"dockward.test": RUN, **(TEAM if key == "labelled" else {})}
        docker_api.create_volume(name, labels=labels)
    made = []
    try:
        for key, labels in (("mine", TEAM), ("other", {})):
            made.append(
                docker_api.create_container(
                    lab_image,
                    ["true"],
                    labels={"dockward.test": RUN, **labels},
                    host_config=docker_api.create_host_config(binds=[f"{vols[key]}:/data"]),
                )["Id"]
            )
        direct = docker_api.df()
        seen = api_through(scoped).df()
        ids = {c["Id"] for c in seen["Containers"]}
        assert made[0] in ids and made[1] not in ids
        assert all(c["Labels"].get("dockward.scope") == "team-a" for c in seen["Containers"])
        assert {made[0], made[1]} <= {c["Id"] for c in direct["Containers"]}
        names = {v["Name"] for v in seen["Volumes"]}
        assert {vols["mine"], vols["labelled"]} <= names
        assert not {vols["other"], vols["loose"]} & names
        assert all(v["Name"] in names for v in direct["Volumes"] if v["Name"] in (vols["mine"],))
        image = docker_api.inspect_image(lab_image)["Id"]
        count = next(i["Containers"] for i in seen["Images"] if i["Id"] == image)
        assert count == len([c for c in seen["Containers"] if c["ImageID"] == image])
        assert {i["Id"] for i in seen["Images"]} == {i["Id"] for i in direct["Images"]}
    finally:
        for cid in made:
            with contextlib.suppress(docker.errors.APIError):
                docker_api.remove_container(cid, force=True)
        for name in vols.values():
            with contextlib.suppress(docker.errors.APIError):
                docker_api.remove_volume(name)


def test_scope_docker_run(scoped: RunningProxy, docker_api: Any, lab_image: str) -> None:
    """`docker run` (create, attach, wait, start, by the id the create answered) through the
    scope, with and without its label."""
    labels = ["--label", f"dockward.test={RUN}"]
    name = f"{RUN}-run-{time.monotonic_ns()}"
    try:
        ok = _cli(
            scoped,
            *("run", "--name", name, *labels, "-l", "dockward.scope=team-a"),
            *(lab_image, "echo", "hi"),
        )
        assert ok.returncode == 0, ok.stderr
        logs = _cli(scoped, "logs", name)
        assert (logs.returncode, logs.stdout) == (0, "hi\n"), logs.stderr
        bad = _cli(scoped, "run", "--rm", *labels, lab_image, "echo", "hi")
        assert bad.returncode != 0 and "must be in its scope" in bad.stderr
    finally:
        for c in docker_api.containers(all=True, filters={"label": f"dockward.test={RUN}"}):
            with contextlib.suppress(docker.errors.APIError):
                docker_api.remove_container(c["Id"], force=True)


def test_scope_create_cannot_mount_other_containers_volumes(
    scoped: RunningProxy, docker_api: Any, lab_image: str
) -> None:
    """A named volume mounted by a container outside the scope is that container's data, what
    `--volumes-from` would reach: refused by name too (binds and mounts); the scope's own
    volumes and unused ones are fine."""
    vols = {k: f"{RUN}-{k}-{time.monotonic_ns()}" for k in ("mine", "other", "new")}
    labels = {"dockward.test": RUN}
    try:
        for key, extra in (("mine", TEAM), ("other", {})):
            docker_api.create_container(
                lab_image,
                ["true"],
                labels={**labels, **extra},
                host_config=docker_api.create_host_config(binds=[f"{vols[key]}:/data"]),
            )
        base = ["create", "--label", f"dockward.test={RUN}", "--label", "dockward.scope=team-a"]
        for spec in (
            ["-v", f"{vols['other']}:/data:ro"],
            ["--mount", f"type=volume,source={vols['other']},target=/data"],
        ):
            bad = _cli(scoped, *base, *spec, lab_image, "true")
            assert bad.returncode != 0 and "outside this client's scope" in bad.stderr, bad.stderr
        for spec in (
            ["-v", f"{vols['mine']}:/data"],
            ["--mount", f"type=volume,source={vols['mine']},target=/data"],
            ["-v", f"{vols['new']}:/data"],
            ["-v", "/tmp:/data:ro"],  # a bind: the admission rules' business, not the scope's
        ):
            ok = _cli(scoped, *base, *spec, lab_image, "true")
            assert ok.returncode == 0, (spec, ok.stderr)
    finally:
        for c in docker_api.containers(all=True, filters={"label": f"dockward.test={RUN}"}):
            with contextlib.suppress(docker.errors.APIError):
                docker_api.remove_container(c["Id"], force=True)
        for name in vols.values():
            with contextlib.suppress(docker.errors.APIError):
                docker_api.remove_volume(name)


def test_scope_build_cannot_join_other_containers(
    proxy_factory: Callable[..., RunningProxy],
    two: tuple[str, str],
    docker_api: Any,
    lab_image: str,
) -> None:
    """The legacy builder runs each step with `networkmode`: `container:<x>` joins <x>'s network
    namespace. A scoped client's build may join only its own containers (pinned by id)."""
    import io

    mine, other = two
    docker_api.start(mine)
    docker_api.start(other)
    policy = {"default": {"allow": ["build"], "scope": {"labels": ["dockward.scope=team-a"]}}}
    api = api_through(proxy_factory(PolicyAuthorizer(parse_policy(policy))))
    context = _tar("Dockerfile", f"FROM {lab_image}\nRUN cat /proc/net/dev\n".encode())
    tag = f"{RUN}-build:x"

    def build(client: Any, mode: str) -> str:
        out = client.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            network_mode=mode,
            tag=tag,
            rm=True,
            decode=True,
        )
        return "".join(str(line.get("stream") or line.get("error") or "") for line in out)

    try:
        assert "Successfully tagged" in build(docker_api, f"container:{other}")  # the daemon's way
        for ref in (other, other[:12], docker_api.inspect_container(other)["Name"].lstrip("/")):
            with pytest.raises(docker.errors.APIError) as err:
                build(api, f"container:{ref}")
            assert err.value.status_code == 403 and "networkmode" in str(err.value)
        assert "Successfully tagged" in build(api, f"container:{mine[:12]}")
    finally:
        with contextlib.suppress(docker.errors.APIError):
            docker_api.remove_image(tag)
