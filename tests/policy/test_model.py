"""The policy file: strict schema, one-line errors, aliases onto rule ids."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dockward.errors import ConfigError
from dockward.model.finding import Severity
from dockward.policy.model import DEFAULT_DENY, load_policy, parse_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "policy.example.yaml"


def test_documented_example_loads() -> None:
    p = load_policy(EXAMPLE)
    assert p.clients and p.default is not None
    assert p.admission.images.fail_on_severity is Severity.HIGH


def test_defaults() -> None:
    p = parse_policy({})
    assert p.admission.deny == DEFAULT_DENY
    assert p.default is None and p.clients == ()


def test_aliases_and_ids() -> None:
    p = parse_policy({"admission": {"deny": ["privileged", "host-namespaces", "dw-c031"]}})
    assert p.admission.deny[0] == "DW-C001"
    assert {"DW-C011", "DW-C017", "DW-C031"} <= set(p.admission.deny)


def test_token_file(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("s3cret-token-0123456789\n")
    p = parse_policy(
        {"clients": [{"name": "ci", "token_file": "t", "allow": ["ping"]}]}, base=tmp_path
    )
    assert p.clients[0].token_sha256 == (hashlib.sha256(b"s3cret-token-0123456789").hexdigest(),)


@pytest.mark.parametrize(
    ("doc", "msg"),
    [
        ({"admision": {}}, "unknown key 'admision'"),
        ({"admission": {"deny": ["no-such-rule"]}}, "unknown rule"),
        ({"clients": [{"name": "x", "allow": ["ping"]}]}, "needs uid, gid"),
        ({"clients": [{"uid": 1, "allow": ["containers.crate"]}]}, "matches no API route"),
        ({"clients": [{"source": "10.0.0.300/8", "allow": ["ping"]}]}, "not an address"),
        ({"admission": {"bind_paths": ["srv"]}}, "absolute"),
        ({"admission": {"images": {"fail_on_severity": "severe"}}}, "unknown severity"),
        ({"admission": {"images": {"cosign_key": "/nonexistent.pub"}}}, "no such file"),
        ({"max_body": 0}, "max_body"),
        ({"version": 2}, "only version 1"),
        ([], "must be a mapping"),
    ],
)
def test_errors_are_one_line(doc: object, msg: str) -> None:
    with pytest.raises(ConfigError, match=msg) as info:
        parse_policy(doc, "p.yaml")
    assert "\n" not in str(info.value)


def test_bad_yaml_reports_line(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("clients:\n  - uid: [1\n")
    with pytest.raises(ConfigError, match="line"):
        load_policy(f)
