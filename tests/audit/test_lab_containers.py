"""Container and image checks against the real daemon: every check fails on its bad container
and passes on the hardened one."""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from typing import Any

import pytest

from dockward.catalog import default_rules
from dockward.engine.lab import build_busybox_image
from tests.audit.lab import LAB, LAB_CONTAINERS, build_lab
from tests.conftest import run_cli

CONTAINER_RULES = [e.rule.id for e in default_rules() if e.rule.kind == "container"]
BAD_IMAGE = "dwaudit/bad-image:1"
GOOD_IMAGE = "dwaudit/good-image:1"


def _statuses(report: dict[str, Any]) -> dict[str, dict[str, set[str]]]:
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in report["results"]:
        out[r["target"]][r["rule_id"]].add(r["status"])
    return out


@pytest.fixture(scope="module")
def lab_results(docker_api: Any, lab_image: str) -> dict[str, dict[str, set[str]]]:
    for tag in (BAD_IMAGE, GOOD_IMAGE):
        with contextlib.suppress(Exception):
            docker_api.remove_image(tag, force=True)
    build_busybox_image(
        docker_api,
        BAD_IMAGE,
        extra="ENV API_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789AB\n"
        "EXPOSE 22\n"
        'RUN ["/bin/true", "apt-get", "update"]\n'
        "ADD busybox /opt/busybox\n",
    )
    build_busybox_image(docker_api, GOOD_IMAGE, extra='USER 1000:1000\nHEALTHCHECK CMD ["true"]\n')
    build_lab(docker_api, lab_image)
    res = run_cli(
        "audit", "--section", "container", "--section", "image", "-f", "json", "--fail-on", "never"
    )
    assert res.code == 0, res.err
    return _statuses(json.loads(res.out))


BAD = [(lab.name, lab.rule) for lab in LAB_CONTAINERS if lab.rule]


@pytest.mark.parametrize(("name", "rule"), BAD, ids=[f"{r}-{n}" for n, r in BAD])
def test_bad_container_fails_its_check(
    lab_results: dict[str, dict[str, set[str]]], name: str, rule: str
) -> None:
    assert lab_results[f"container {name}"][rule] == {"fail"}


@pytest.mark.parametrize("rule", CONTAINER_RULES)
def test_hardened_container_passes(lab_results: dict[str, dict[str, set[str]]], rule: str) -> None:
    assert lab_results[f"container {LAB}-good"][rule] == {"pass"}


def test_fixed_address_outside_the_handed_out_range_passes(
    lab_results: dict[str, dict[str, set[str]]],
) -> None:
    assert lab_results[f"container {LAB}-fixedipok"]["DW-C043"] == {"pass"}
    assert lab_results[f"container {LAB}-fixedip"]["DW-C043"] == {"fail"}


def test_harmless_device_cgroup_rule_passes(lab_results: dict[str, dict[str, set[str]]]) -> None:
    assert lab_results[f"container {LAB}-nullrule"]["DW-C019"] == {"pass"}
    assert lab_results[f"container {LAB}-diskrule"]["DW-C019"] == {"fail"}


# Rules whose bad container needs a daemon of its own, and the test that has it.
OWN_DAEMON = {"DW-C041": "tests/audit/test_runtime_rule.py (a registered custom runtime)"}


def test_every_container_rule_has_a_bad_lab_container() -> None:
    assert set(CONTAINER_RULES) - set(OWN_DAEMON) <= {lab.rule for lab in LAB_CONTAINERS}


def test_created_containers_are_audited(lab_results: dict[str, dict[str, set[str]]]) -> None:
    # docker-bench audits only running containers; a created privileged one starts again later.
    assert lab_results[f"container {LAB}-privileged"]["DW-C001"] == {"fail"}
    assert lab_results[f"container {LAB}-privileged"]["DW-C009"] == {"skip"}


IMAGE_RULES = ["DW-I001", "DW-I002", "DW-I003", "DW-I004", "DW-I005", "DW-I006"]


@pytest.mark.parametrize("rule", IMAGE_RULES)
def test_image_rules_fail_and_pass(lab_results: dict[str, dict[str, set[str]]], rule: str) -> None:
    assert lab_results[f"image {BAD_IMAGE}"][rule] == {"fail"}
    assert lab_results[f"image {GOOD_IMAGE}"][rule] == {"pass"}
