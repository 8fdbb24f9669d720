"""Request targets: normalised as dockerd routes them, ambiguous forms refused."""

from __future__ import annotations

import pytest

from dockward.policy.routes import match_route
from dockward.proxy.paths import PathError, parse_target


@pytest.mark.parametrize(
    ("raw", "path", "version"),
    [
        ("/_ping", "/_ping", ""),
        ("/v1.41/containers/json?all=1", "/containers/json", "1.41"),
        ("/v1.24/containers/abc/json", "/containers/abc/json", "1.24"),
        ("/images/localhost:5000/a/b:1/json", "/images/localhost:5000/a/b:1/json", ""),
        ("/images/busybox%40sha256:ab/json", "/images/busybox@sha256:ab/json", ""),
        ("/v1.41", "/v1.41", ""),  # no route follows: a name, not a version prefix
    ],
)
def test_normalised(raw: str, path: str, version: str) -> None:
    t = parse_target(raw)
    assert (t.path, t.version) == (path, version)


@pytest.mark.parametrize(
    "raw",
    [
        "/v1.41/../containers/create",
        "/v1.41/containers/./create",
        "/v1.41//containers/create",
        "//containers/create",
        "/containers/create/",
        "/v1.41/containers%2Fcreate",
        "/v1.41/containers%2fcreate",
        "/v1.41/%2e%2e/containers/create",
        "/v1.41/containers/%2E/create",
        "/v1.41/containers%5Ccreate",
        "/v1.41/containers/x%00/start",
        "/v1.41/containers/x%25/start",
        "/v1.41/containers/%zz/start",
        "/v1.41/containers/x%0a/start",
        "http://a@docker/v1.41/containers/create",
        "ftp://docker/v1.41/containers/create",
        "http://docker",
        "docker:2375",
        "*",
        "/containers/json#frag",
        "/containers/%ff/json",
    ],
)
def test_refused(raw: str) -> None:
    with pytest.raises(PathError):
        parse_target(raw)


def test_query_parsed_last_value_wins() -> None:
    t = parse_target("/images/create?fromImage=a&fromImage=b&tag=1")
    assert t.param("fromImage") == "b"
    assert t.param("tag") == "1"
    assert t.param("missing") == ""


@pytest.mark.parametrize(
    ("method", "path", "route", "params"),
    [
        ("POST", "/containers/create", "containers.create", {}),
        ("GET", "/containers/json", "containers.list", {}),
        ("POST", "/containers/abc/start", "containers.start", {"id": "abc"}),
        ("POST", "/containers/abc/exec", "exec.create", {"id": "abc"}),
        ("POST", "/exec/e1/start", "exec.start", {"id": "e1"}),
        ("GET", "/images/reg:5000/a/b:1/json", "images.inspect", {"name": "reg:5000/a/b:1"}),
        ("DELETE", "/images/a/b:1", "images.delete", {"name": "a/b:1"}),
        ("HEAD", "/_ping", "ping", {}),
    ],
)
def test_routes(method: str, path: str, route: str, params: dict[str, str]) -> None:
    m = match_route(method, path)
    assert m is not None
    assert m.route.name == route
    assert m.params == params


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/containers/create"), ("POST", "/CONTAINERS/create"), ("PATCH", "/containers/x")],
)
def test_unknown_routes(method: str, path: str) -> None:
    assert match_route(method, path) is None


def test_absolute_form_read_by_its_path() -> None:
    """dockerd's Go server routes `http://host/path` by the path: so does the proxy, and it
    forwards the origin-form it judged."""
    t = parse_target("http://docker/v1.41/containers/create?name=x")
    assert (t.raw, t.path, t.version, t.param("name")) == (
        "/v1.41/containers/create?name=x",
        "/containers/create",
        "1.41",
        "x",
    )
    with pytest.raises(PathError):
        parse_target("http://docker/v1.41/x/../containers/create")
