"""`dockward lint` as a user runs it: formats, SARIF regions, suppressions, bad input, exit codes."""

from __future__ import annotations

import json
import os
import resource
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.conftest import run_cli

BAD_DF = """\
FROM debian
# dockward ignore=DW-B020
RUN sudo apt-get update && \\
    sudo apt-get install -y curl  # dockward ignore=DW-B033
RUN curl -fsSL https://get.example.sh | sh
USER root
"""


def _write(tmp: Path, name: str, text: str | bytes) -> Path:
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def _results(out: str) -> list[dict]:  # type: ignore[type-arg]
    return json.loads(out)["results"]  # type: ignore[no-any-return]


def test_json_findings_with_locations_and_inline_suppression(tmp_path: Path) -> None:
    _write(tmp_path, "Dockerfile", BAD_DF)
    r = run_cli("lint", "-f", "json", str(tmp_path / "Dockerfile"))
    assert r.code == 1, r.err
    res = _results(r.out)
    found = {(x["rule_id"], x["location"]["line"], x["location"]["column"]) for x in res}
    assert ("DW-B025", 5, 5) in found
    assert ("DW-B001", 6, 1) in found
    assert ("DW-B003", 1, 1) in found
    sudo = [x for x in res if x["rule_id"] == "DW-B020"]
    assert sudo and all("waived" in x for x in sudo)  # the comment above covers both lines
    pinned = [x for x in res if x["rule_id"] == "DW-B033"]
    assert pinned and all("waived" in x for x in pinned)


def test_unused_suppression_is_a_warning(tmp_path: Path) -> None:
    _write(tmp_path, "Dockerfile", "FROM a:1\n# dockward ignore=DW-B020\nRUN echo hi\n")
    r = run_cli("lint", "-f", "json", str(tmp_path / "Dockerfile"))
    warnings = json.loads(r.out)["warnings"]
    assert any("Dockerfile:2: suppression" in w and "matches no finding" in w for w in warnings)


def test_file_wide_and_hadolint_pragmas(tmp_path: Path) -> None:
    text = "# dockward ignore-file=DW-B007\n# hadolint global ignore=DL3002\nFROM a:1\nUSER root\n"
    _write(tmp_path, "Dockerfile", text)
    r = run_cli("lint", "-f", "json", str(tmp_path / "Dockerfile"))
    res = {x["rule_id"]: x for x in _results(r.out)}
    assert "waived" in res["DW-B007"] and "waived" in res["DW-B001"]
    assert r.code == 0  # everything failing is waived


def test_sarif_regions(tmp_path: Path) -> None:
    _write(tmp_path, "Dockerfile", BAD_DF)
    r = run_cli("lint", "-f", "sarif", str(tmp_path / "Dockerfile"))
    doc = json.loads(r.out)
    results = doc["runs"][0]["results"]
    pipe = next(x for x in results if x["ruleId"] == "DW-B025")
    region = pipe["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 5, "startColumn": 5, "endLine": 5, "endColumn": 38}
    sudo = [x for x in results if x["ruleId"] == "DW-B020"]
    assert sudo and all(x.get("suppressions") for x in sudo)
    uri = pipe["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "file://" + str(tmp_path / "Dockerfile")
    assert len(sudo) == 2  # two sudo findings: two alerts, two fingerprints
    assert len({x["partialFingerprints"]["dockward/v1"] for x in sudo}) == 2
    rel = run_cli("lint", "-f", "sarif", "Dockerfile", cwd=tmp_path)
    rel_uri = json.loads(rel.out)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert rel_uri["artifactLocation"]["uri"] == "Dockerfile"


def test_compose_directory_table_and_junit(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "app/compose.yaml",
        "services:\n  web:\n    image: nginx:1.25\n    privileged: true\n"
        "    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n",
    )
    _write(tmp_path, "app/compose.override.yaml", "services:\n  web:\n    pid: host\n")
    r = run_cli("lint", "-f", "table", str(tmp_path))
    assert r.code == 1
    assert "compose.yaml:4:5" in r.out and "DW-C001" in r.out
    assert "compose.override.yaml:3:5" in r.out and "DW-C017" in r.out
    j = run_cli("lint", "-f", "junit", str(tmp_path))
    ET.fromstring(j.out)


def test_stdin_and_run_lines() -> None:
    r = run_cli("lint", "-f", "json", "--stdin", input="FROM a:1\nRUN sudo ls\n")
    assert any(x["rule_id"] == "DW-B020" for x in _results(r.out))
    r = run_cli(
        "lint", "-f", "json", "--stdin", input="services:\n  a:\n    image: x:1\n    ipc: host\n"
    )
    ipc = next(x for x in _results(r.out) if x["rule_id"] == "DW-C018")
    assert ipc["location"]["path"] == "-" and ipc["location"]["line"] == 4
    r = run_cli("lint", "-f", "json", "--run", "docker run --privileged -v /:/h alpine:3")
    ids = {x["rule_id"] for x in _results(r.out) if x["status"] == "fail"}
    assert {"DW-C001", "DW-C007"} <= ids and r.code == 1


def test_fail_on_threshold(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "Dockerfile",
        "FROM a:1\nHEALTHCHECK CMD true\nUSER 1000\nRUN pip install --no-cache-dir flask\n",
    )
    assert run_cli("lint", "-f", "json", str(tmp_path / "Dockerfile")).code == 0  # info only
    assert run_cli("lint", "-f", "json", "--fail-on", "info", str(tmp_path)).code == 1


def test_bad_files_are_per_file_errors(tmp_path: Path) -> None:
    _write(tmp_path, "Dockerfile", "FROM a:1\nRUN sudo x\n")
    _write(tmp_path, "bin/Dockerfile", b"\x7fELF\x00\x00\x01binary")
    _write(tmp_path, "utf/Dockerfile", b"FROM a:1\nRUN echo \xff\xfe\n")
    _write(tmp_path, "heredoc/Dockerfile", "FROM a:1\nRUN <<EOF\necho\n")
    _write(tmp_path, "big/Dockerfile", b"FROM a:1\n" + b"# x\n" * (13 * 1024 * 1024))
    bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n"
        for i in range(9)
    )
    _write(tmp_path, "bomb/compose.yaml", bomb)
    _write(tmp_path, "deep/compose.yaml", "services: " + "[" * 50000 + "]" * 50000 + "\n")
    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "fifo" / "Dockerfile")
    r = run_cli("lint", "-f", "json", str(tmp_path))
    assert r.code == 1, r.err
    res = _results(r.out)
    errors = {
        x["location"]["path"].split("/")[-2]: x["message"] for x in res if x["status"] == "error"
    }
    assert "binary file" in errors["bin"]
    assert "invalid UTF-8" in errors["utf"] and ":2:" in errors["utf"]
    assert "unterminated heredoc" in errors["heredoc"]
    assert "over the" in errors["big"]
    assert "alias bomb" in errors["bomb"]
    assert "nest" in errors["deep"]
    assert "not a regular file" in errors["fifo"]
    assert any(x["rule_id"] == "DW-B020" for x in res)  # the good file is still linted


def test_bad_cli_input_is_one_line_exit_2(tmp_path: Path) -> None:
    for args in (
        ("lint",),
        ("lint", str(tmp_path / "missing")),
        ("lint", "--run", "docker run --bogus x"),
        ("lint", "--fail-on", "sometimes", str(tmp_path)),
    ):
        r = run_cli(*args)
        assert r.code == 2, (args, r.err)
        assert r.err.count("\n") == 1 and "Traceback" not in r.err
    r = run_cli("lint", str(tmp_path), env={"DOCKWARD_MAX_SIZE": "lots"})
    assert r.code == 2 and "--max-size" in r.err and "Traceback" not in r.err


def test_memory_stays_bounded_on_bomb(tmp_path: Path) -> None:
    bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n"
        for i in range(9)
    )
    from dockward.lint.engine import lint

    _write(tmp_path, "compose.yaml", bomb)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = lint([str(tmp_path)])
    assert report.results[0].status.value == "error"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KiB


def test_config_ignore_and_trusted_registries(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "dockward.toml",
        '[lint]\nignore = ["DW-B007"]\ntrusted_registries = ["r.example"]\n',
    )
    _write(tmp_path, "Dockerfile", "FROM nginx:1.25\nUSER 1000\n")
    r = run_cli("lint", "-f", "json", "Dockerfile", cwd=tmp_path)
    ids = {x["rule_id"] for x in _results(r.out)}
    assert "DW-B007" not in ids and "DW-B004" in ids


def test_compose_suppression_and_profiles(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "compose.yaml",
        "services:\n  web:\n    image: nginx:1.25\n"
        "    # dockward ignore=DW-C001\n    privileged: true\n"
        "    pid: host  # dockward ignore=DW-C017\n"
        "  dbg:\n    image: busybox:1.36\n    profiles: [debug]\n    ipc: host\n",
    )
    r = run_cli("lint", "-f", "json", "--profile", "prod", str(tmp_path / "compose.yaml"))
    res = _results(r.out)
    by_rule = {x["rule_id"]: x for x in res if x["status"] == "fail"}
    assert "waived" in by_rule["DW-C001"] and by_rule["DW-C001"]["location"]["line"] == 5
    assert "waived" in by_rule["DW-C017"] and by_rule["DW-C017"]["location"]["line"] == 6
    assert "DW-C018" not in by_rule  # the debug profile is not active
    r = run_cli("lint", "-f", "json", str(tmp_path / "compose.yaml"))
    assert any(x["rule_id"] == "DW-C018" for x in _results(r.out))


def test_rules_list_has_dockerfile_rules_with_peer_references() -> None:
    r = run_cli("rules", "list", "--kind", "dockerfile", "--format", "json")
    rules = {x["id"]: x for x in json.loads(r.out)}
    assert len(rules) >= 30
    assert "hadolint DL3004" in rules["DW-B020"]["references"]
    assert "checkov CKV2_DOCKER_1" in rules["DW-B020"]["references"]


def test_pre_commit_hook_file_pattern() -> None:
    import re

    import yaml

    [hook] = yaml.safe_load((Path(__file__).parents[2] / ".pre-commit-hooks.yaml").read_text())
    pattern = re.compile(hook["files"])
    for name in (
        "Dockerfile",
        "a/Dockerfile.dev",
        "x.Dockerfile",
        "Containerfile",
        "compose.yaml",
        "deploy/docker-compose.prod.yml",
    ):
        assert pattern.search(name), name
    for name in ("README.md", "compose.yaml.bak", "src/app.py"):
        assert not pattern.search(name), name


def test_discovery_of_the_names_people_use(tmp_path: Path) -> None:
    df = "FROM registry.example/base:1.2.3\nUSER 1000\n"
    compose = "services:\n  web:\n    image: registry.example/app:1\n    privileged: true\n"
    for name in (
        "Dockerfile",
        "api.dockerfile",
        "web.Dockerfile",
        "Dockerfile.prod",
        "Dockerfile-dev",
        "Containerfile",
        "Containerfile.arm64",
        "sub/worker.containerfile",
    ):
        _write(tmp_path, name, df)
    _write(tmp_path, "Dockerfile.md", "# notes\n")
    _write(tmp_path, "docker-compose.override.yml", compose)
    _write(tmp_path, "deploy/stack.yaml", compose)
    _write(tmp_path, "deploy/values.yaml", "replicas: 2\nservices_enabled: true\n")
    r = run_cli("lint", "--list-files", str(tmp_path))
    assert r.code == 0, r.err
    listed = {
        line.split("\t")[0].removeprefix(str(tmp_path) + "/"): line.split("\t")[1]
        for line in r.out.splitlines()
    }
    assert listed == {
        "Containerfile": "dockerfile",
        "Containerfile.arm64": "dockerfile",
        "Dockerfile": "dockerfile",
        "Dockerfile-dev": "dockerfile",
        "Dockerfile.prod": "dockerfile",
        "api.dockerfile": "dockerfile",
        "web.Dockerfile": "dockerfile",
        "sub/worker.containerfile": "dockerfile",
        "docker-compose.override.yml": "compose",
    }
    r = run_cli("lint", "--list-files", "--any-yaml", str(tmp_path))
    assert f"{tmp_path}/deploy/stack.yaml\tcompose" in r.out.splitlines()
    assert "values.yaml" not in r.out
    # --any-yaml lints what it found: the privileged service in deploy/stack.yaml fails.
    r = run_cli("lint", "-f", "json", "--any-yaml", str(tmp_path / "deploy"))
    assert r.code == 1, r.err
    assert {x["rule_id"] for x in _results(r.out)} >= {"DW-C001"}
    r = run_cli("lint", "-f", "json", str(tmp_path / "deploy"))
    assert not any(x["rule_id"] == "DW-C001" for x in _results(r.out))
