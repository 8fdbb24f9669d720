"""Credentials, auth challenges and index platforms: the client's pure parts."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from dockward.errors import ConfigError, InputError
from dockward.registry import (
    CredentialStore,
    Platform,
    RegistryError,
    insecure_hosts,
    parse_challenge,
    parse_reference,
    select_platform,
)


def test_challenges_parse_quoted_values_and_reject_garbage() -> None:
    c = parse_challenge(
        'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"'
    )
    assert c.scheme == "bearer"
    assert c.params == {
        "realm": "https://auth.example/token",
        "service": "reg",
        "scope": "repository:a/b:pull,push",
    }
    assert parse_challenge('Basic realm="dwupd"').params == {"realm": "dwupd"}
    with pytest.raises(RegistryError):
        parse_challenge('Bearer realm="unterminated')


def test_credentials_from_docker_config(tmp_path: Path) -> None:
    auth = base64.b64encode(b"alice:s3cret").decode()
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": auth},
                    "http://127.0.0.1:15801": {"username": "bob", "password": "pw"},
                    "ghcr.io": {"identitytoken": "tok"},
                }
            }
        )
    )
    store = CredentialStore.load(tmp_path / "config.json")
    hub = store.lookup("docker.io")
    assert (hub.username, hub.password) == ("alice", "s3cret")
    assert store.lookup("127.0.0.1:15801").username == "bob"
    assert store.lookup("ghcr.io").auth_config() == {"identitytoken": "tok"}
    assert store.lookup("quay.io").empty
    assert "s3cret" not in repr(hub) and "s3cret" not in repr(store)
    assert CredentialStore.load(tmp_path / "missing.json").lookup("docker.io").empty


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "expected a JSON object"),
        ('{"auths": {"r": {"auth": "!!!"}}}', "not base64"),
    ],
)
def test_broken_docker_config_is_a_config_error(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(ConfigError, match=message):
        CredentialStore.load(tmp_path / "config.json").lookup("r")


def test_platform_resolution_prefers_the_exact_variant() -> None:
    index = {
        "manifests": [
            {
                "digest": "sha256:" + "1" * 64,
                "platform": {"os": "linux", "architecture": "arm", "variant": "v6"},
            },
            {
                "digest": "sha256:" + "2" * 64,
                "platform": {"os": "linux", "architecture": "arm", "variant": "v7"},
            },
            {"digest": "sha256:" + "3" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
            {
                "digest": "sha256:" + "4" * 64,
                "platform": {"os": "unknown", "architecture": "unknown"},
            },
        ]
    }
    ref = str(parse_reference("x"))
    assert (
        select_platform(index, Platform("linux", "arm", "v7"), ref)["digest"]
        == "sha256:" + "2" * 64
    )
    assert select_platform(index, Platform("linux", "amd64"), ref)["digest"] == "sha256:" + "3" * 64
    with pytest.raises(InputError, match="no manifest for platform linux/s390x"):
        select_platform(index, Platform("linux", "s390x"), ref)


def test_insecure_hosts_follow_the_daemon() -> None:
    insecure = insecure_hosts(["mirror.lan:5000"], ["10.20.0.0/16", "not a cidr", "fd00::/8"])
    for host in ("127.0.0.1:5000", "localhost", "[::1]:5000", "mirror.lan:5000", "10.20.3.4:443"):
        assert insecure(host), host
    for host in ("mirror.lan", "10.21.0.1:5000", "registry.example", "[fe80::1]:5000"):
        assert not insecure(host), host
    assert insecure("[fd00::5]:5000") and insecure("fd00::5")
