"""A registry that requires a login: credentials come from the Docker client config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.update.conftest import (
    LABEL,
    PASSWORD,
    PREFIX,
    USER,
    Registry,
    TokenRegistry,
    build_version,
    docker_config_dir,
    push,
)
from tests.update.test_update_e2e import _update, events


def test_login_registry_needs_credentials_from_docker_config(
    clean: Any, auth_registry: Registry, tmp_path: Path
) -> None:
    client = clean
    auth = {"username": USER, "password": PASSWORD}
    v1, v2 = build_version(client, "v1"), build_version(client, "v2")
    repo, name = f"{PREFIX}/private", f"{PREFIX}-private"
    push(client, v1, auth_registry, repo, "stable", auth=auth)
    c = client.create_container(
        auth_registry.ref(repo, "stable"), name=name, labels={**LABEL, "dockward.update": "true"}
    )
    client.start(c["Id"])
    push(client, v2, auth_registry, repo, "stable", auth=auth)
    state = tmp_path / "state"
    empty = tmp_path / "empty"
    empty.mkdir()

    code, doc, err = _update(state, "--docker-config", str(empty))
    assert code == 2
    assert "needs a login" in err and err.count("\n") == 1
    assert client.inspect_container(name)["Id"] == c["Id"]

    wrong = tmp_path / "wrong"
    wrong.mkdir()
    bad = {"auths": {auth_registry.host: {"username": USER, "password": "nope"}}}
    (wrong / "config.json").write_text(json.dumps(bad))
    code, doc, err = _update(state, "--docker-config", str(wrong))
    assert code == 2 and "refused access (HTTP 401)" in err
    assert PASSWORD not in err and "nope" not in err

    config = docker_config_dir(tmp_path, auth_registry.host)
    code, doc, err = _update(state, "--docker-config", str(config))
    assert code == 0, err
    assert events(doc)[name]["status"] == "updated"
    assert client.inspect_container(name)["Image"] == v2


def test_bearer_token_registry_anonymous_and_with_login(
    clean: Any, token_registry: TokenRegistry, tmp_path: Path
) -> None:
    client = clean
    auth = {"username": USER, "password": PASSWORD}
    v1, v2 = build_version(client, "v1"), build_version(client, "v2")
    repo, name = f"{PREFIX}/token", f"{PREFIX}-token"
    push(client, v1, token_registry, repo, "stable", auth=auth)
    _run = client.create_container(
        token_registry.ref(repo, "stable"), name=name, labels={**LABEL, "dockward.update": "true"}
    )
    client.start(_run["Id"])
    push(client, v2, token_registry, repo, "stable", auth=auth)
    seen = token_registry.server.requests
    seen.clear()
    empty = tmp_path / "empty"
    empty.mkdir()
    # Anonymous: the token server grants pull, so the check needs no login at all.
    code, doc, err = _update(tmp_path / "s", "--monitor-only", "--docker-config", str(empty))
    assert code == 0, err
    assert events(doc)[name]["status"] == "outdated"
    assert seen and not any(r["sent_credentials"] for r in seen)
    assert seen[0]["scope"] == [f"repository:{repo}:pull"]
    seen.clear()
    config = docker_config_dir(tmp_path, token_registry.host)
    code, doc, err = _update(tmp_path / "s", "--docker-config", str(config))
    assert code == 0, err
    assert events(doc)[name]["status"] == "updated"
    assert any(r["authed"] for r in seen)  # our HEAD asked for a token with the login
    assert client.inspect_container(name)["Image"] == v2
