"""Image references: the table from distribution/reference's normalize_test.go (Docker's own)."""

from __future__ import annotations

import pytest

from dockward.registry import InvalidReference, parse_reference

HEX = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"
DIGEST = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"

VALID = [
    "docker/docker",
    "library/debian",
    "debian",
    "docker.io/docker/docker",
    "docker.io/library/debian",
    "docker.io/debian",
    "index.docker.io/docker/docker",
    "index.docker.io/library/debian",
    "index.docker.io/debian",
    "127.0.0.1:5000/docker/docker",
    "127.0.0.1:5000/library/debian",
    "127.0.0.1:5000/debian",
    "[fc00::1]:5000/docker/docker",
    "[fc00::1]:5000/debian",
    "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
    f"docker.io/{HEX}",  # a 64-hex name is fine with a domain: no longer ambiguous
    "docker-rules/docker",
    "docker---rules/docker",
    "doc/docker",
    "d/docker",
    "jess/t",
    "dock__er/docker",
    "[::1]:5000/app:1",
    "localhost/x",
    "ghcr.io/a/b/c:1.0-rc.1",
]

INVALID = [
    "https://github.com/docker/docker",
    "docker/Docker",
    "-docker",
    "-docker/docker",
    "-docker.io/docker/docker",
    "docker///docker",
    "docker.io/docker/Docker",
    "docker.io/docker///docker",
    HEX,
    "docker-/docker",
    "-docker-/docker",
    "____/____",
    "_docker/_docker",
    "dock..er/docker",
    "dock_.er/docker",
    "dock-.er/docker",
    "docker/",
    "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_" * 4 + "/docker",
    # tags and digests
    "busybox:-foo",
    "busybox:",
    "busybox@sha256:short",
    "busybox@sha256:" + "A" * 64,
    "busybox@md5:" + "a" * 32,
    "busybox:" + "a" * 129,
    "",
    "a b",
    "app/UPPER",
    "a//b",
    "x" * 600,
]


@pytest.mark.parametrize("text", VALID)
def test_docker_accepts(text: str) -> None:
    parse_reference(text)


@pytest.mark.parametrize("text", INVALID)
def test_docker_refuses(text: str) -> None:
    with pytest.raises(InvalidReference):
        parse_reference(text)


# (remote name, familiar name, full name, ambiguous spelling or "", domain): TestParseRepositoryInfo
REPOSITORY_INFO = [
    ("fooo/bar", "fooo/bar", "docker.io/fooo/bar", "index.docker.io/fooo/bar", "docker.io"),
    ("library/ubuntu", "ubuntu", "docker.io/library/ubuntu", "library/ubuntu", "docker.io"),
    ("nonlibrary/ubuntu", "nonlibrary/ubuntu", "docker.io/nonlibrary/ubuntu", "", "docker.io"),
    ("other/library", "other/library", "docker.io/other/library", "", "docker.io"),
    (
        "private/moonbase",
        "127.0.0.1:8000/private/moonbase",
        "127.0.0.1:8000/private/moonbase",
        "",
        "127.0.0.1:8000",
    ),
    (
        "privatebase",
        "127.0.0.1:8000/privatebase",
        "127.0.0.1:8000/privatebase",
        "",
        "127.0.0.1:8000",
    ),
    (
        "private/moonbase",
        "example.com/private/moonbase",
        "example.com/private/moonbase",
        "",
        "example.com",
    ),
    ("privatebase", "example.com/privatebase", "example.com/privatebase", "", "example.com"),
    (
        "private/moonbase",
        "example.com:8000/private/moonbase",
        "example.com:8000/private/moonbase",
        "",
        "example.com:8000",
    ),
    (
        "library/ubuntu-12.04-base",
        "ubuntu-12.04-base",
        "docker.io/library/ubuntu-12.04-base",
        "index.docker.io/library/ubuntu-12.04-base",
        "docker.io",
    ),
    ("library/foo", "foo", "docker.io/library/foo", "docker.io/foo", "docker.io"),
    ("library/foo/bar", "library/foo/bar", "docker.io/library/foo/bar", "", "docker.io"),
    ("store/foo/bar", "store/foo/bar", "docker.io/store/foo/bar", "", "docker.io"),
]


@pytest.mark.parametrize(("remote", "familiar", "full", "ambiguous", "domain"), REPOSITORY_INFO)
def test_normalisation(remote: str, familiar: str, full: str, ambiguous: str, domain: str) -> None:
    for text in filter(None, (familiar, full, ambiguous)):
        ref = parse_reference(text)
        assert (ref.repository, ref.registry, ref.name) == (remote, domain, full)
        assert ref.familiar() == f"{familiar}:latest"


# TestNormalizedSplitHostname
SPLIT = [
    ("test.com/foo", "test.com", "foo"),
    ("test_com/foo", "docker.io", "test_com/foo"),
    ("docker/migrator", "docker.io", "docker/migrator"),
    ("test.com:8080/foo", "test.com:8080", "foo"),
    ("test-com:8080/foo", "test-com:8080", "foo"),
    ("foo", "docker.io", "library/foo"),
    ("xn--n3h.com/foo", "xn--n3h.com", "foo"),
    ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
    ("docker.io/foo", "docker.io", "library/foo"),
    ("docker.io/library/foo", "docker.io", "library/foo"),
    ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
    ("localhost/foo", "localhost", "foo"),
    ("Docker/foo", "Docker", "foo"),  # upper case can only be a domain
]


@pytest.mark.parametrize(("text", "domain", "path"), SPLIT)
def test_split_hostname(text: str, domain: str, path: str) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository) == (domain, path)


def test_tag_and_digest_together_and_defaults() -> None:
    short = f"busybox:latest@{DIGEST}"
    ref = parse_reference(short)
    assert ref.canonical == f"docker.io/library/{short}" and ref.familiar() == short
    pinned = parse_reference(f"redis@{DIGEST}")
    assert pinned.tag == "" and pinned.pinned and pinned.reference == DIGEST
    assert pinned.canonical == f"docker.io/library/redis@{DIGEST}"
    assert parse_reference("redis").canonical == "docker.io/library/redis:latest"
    assert parse_reference("alpine").api_host == "registry-1.docker.io"
    assert parse_reference("127.0.0.1:5000/a:1").api_host == "127.0.0.1:5000"
