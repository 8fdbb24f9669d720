"""deploy/compose.yaml is valid Compose for both implementations this machine cannot both run.

Compose v2 (compose-go) is not installable here, so the file is validated against the Compose
Specification's own JSON schema, the one compose-go embeds (vendored in
tests/fixtures/compose-spec/, source and licence in its README), before and after interpolation;
Debian's docker-compose 1.29 checks it with its own loader (`config -q`).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from typing import Any

import jsonschema
import pytest
import yaml

from dockward.lint.interpolate import interpolate_tree
from tests.conftest import REPO

SCHEMA = REPO / "tests/fixtures/compose-spec/compose-spec.json"
COMPOSE = REPO / "deploy/compose.yaml"
ENV = {"DOCKER_GID": "999"}  # what scripts/build-image.sh writes into deploy/.env


def _errors(doc: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    return [
        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(doc)
    ]


def _doc() -> Any:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.mark.parametrize("interpolated", [False, True])
def test_compose_file_is_valid_against_the_compose_spec_schema(interpolated: bool) -> None:
    doc = interpolate_tree(_doc(), ENV) if interpolated else _doc()
    assert _errors(doc) == []


@pytest.mark.parametrize(
    ("service", "key", "value", "complaint"),
    [
        ("proxy", "security_opt", "no-new-privileges:true", "is not of type 'array'"),
        ("monitor", "cap_add", "NET_ADMIN", "is not of type 'array'"),
        ("update", "cpu_quota_v1", 50000, "'cpu_quota_v1' does not match any of the regexes"),
        ("scan", "pids_limit", [64], "is not of type 'number', 'string'"),
    ],
)
def test_the_schema_refuses_what_compose_v2_refuses(
    service: str, key: str, value: Any, complaint: str
) -> None:
    doc = copy.deepcopy(_doc())
    doc["services"][service][key] = value
    errors = _errors(doc)
    assert errors and any(complaint in e for e in errors), errors
    assert all(e.startswith(f"services/{service}") for e in errors), errors


def test_compose_v1_loads_it() -> None:
    if not shutil.which("docker-compose"):
        pytest.fail("docker-compose is missing: scripts/setup.sh installs it")
    r = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "-q"],
        env={"PATH": "/usr/bin:/bin", **ENV}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
