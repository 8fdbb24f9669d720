"""Compose loading: interpolation, .env, merge of several files, extends, profiles, locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockward import specs
from dockward.catalog import default_rules
from dockward.errors import InputError
from dockward.lint import ComposeProject, load_compose
from dockward.lint.containers import lint_compose_service
from dockward.lint.interpolate import interpolate, parse_env_file
from dockward.model import Mount, PortBinding, Status

CORPUS = Path(__file__).parent / "corpus" / "compose"
MERGE = CORPUS / "merge-extends"


def _project(
    env: dict[str, str] | None = None, profiles: list[str] | None = None
) -> ComposeProject:
    files = [str(MERGE / "compose.yaml"), str(MERGE / "compose.override.yaml")]
    return load_compose(files, env=env or {}, profiles=profiles)


def test_merge_interpolation_and_dotenv() -> None:
    project = _project()
    assert project.name == "demo"
    web = {s.name: s for s in project.services}["web"]
    assert web.spec.origin == "compose"
    assert web.spec.image == "nginx:1.27"  # from .env, over the inline default
    assert web.spec.cap_add == ("SYS_ADMIN", "NET_ADMIN", "NET_RAW")  # union across files
    assert web.spec.env_map()["PLAIN"] == "y"  # list syntax overrides the mapping
    assert web.spec.restart.name == "always"  # from the YAML merge key
    assert web.spec.security.no_new_privileges is True
    assert web.spec.memory == 512 * 1024**2
    assert web.spec.nano_cpus == 500_000_000
    assert web.spec.pids_limit == 100
    assert web.location.line == 7 and web.location.column == 3
    assert web.key_locations["cap_add"].path.endswith("compose.override.yaml")
    assert web.key_locations["cap_add"].line == 3
    assert web.key_locations["volumes"].line == 17


def test_ports_and_volumes_short_and_long() -> None:
    web = {s.name: s for s in _project().services}["web"]
    assert web.spec.ports == (
        PortBinding(80, "tcp", "", 80),
        PortBinding(443, "tcp", "127.0.0.1", 8443),
        PortBinding(9000, "tcp", "0.0.0.0", 9000),
    )
    assert web.spec.mounts == (
        Mount("bind", "/var/run/docker.sock", "/var/run/docker.sock", True),
        Mount("bind", str(MERGE / "data"), "/data", False),
        Mount("bind", "/etc", "/host/etc", True, "rshared"),
        Mount("volume", "cache", "/cache", False),
    )


def test_extends_secret_file_and_env_overrides_dotenv() -> None:
    db = {s.name: s for s in _project({"PRIV": "true"}).services}["db"]
    assert db.spec.privileged is True
    assert db.spec.network_mode == "host" and db.spec.pid_mode == "host"
    assert db.key_locations["network_mode"].line == 45  # from the extended service
    assert Mount("bind", "/etc/shadow", "/run/secrets/shadow", True) in db.spec.mounts
    db2 = {s.name: s for s in _project().services}["db"]
    assert db2.spec.privileged is False  # PRIV="false" from .env


def test_profiles() -> None:
    assert [s.name for s in _project(profiles=[]).services] == ["web", "base"]
    assert _project(profiles=[]).inactive == ("db",)
    assert [s.name for s in _project(profiles=["debug"]).services] == ["web", "db", "base"]


def test_unknown_key_is_a_warning_with_location() -> None:
    warnings = _project().warnings
    assert any("compose.override.yaml:4:5: unknown key 'privilidged'" in w for w in warnings)


def test_container_rules_point_at_the_item() -> None:
    web = {s.name: s for s in _project().services}["web"]
    all_results = lint_compose_service(web, default_rules())
    results = {r.rule.id: r for r in all_results}
    sock = results["DW-C008"]
    assert sock.status is Status.FAIL  # the docker.sock line of `volumes:`, not the key
    assert sock.location is not None and (sock.location.line, sock.location.column) == (18, 9)
    # each dangerous capability at its place in the flow list of the base file
    caps = sorted(
        (r.location.line, r.location.column)
        for r in all_results
        if r.rule.id == "DW-C003" and r.status is Status.FAIL and r.location
    )
    assert caps == [(27, 15), (27, 26)]
    assert results["DW-C001"].status is Status.PASS
    # a missing key points at the service
    ro = results["DW-C014"]
    assert ro.status is Status.FAIL and ro.location is not None and ro.location.line == 7


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A}", {"A": "1"}, "1"),
        ("$A-x", {"A": "1"}, "1-x"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A:-${B:-x}}", {}, "x"),
        ("${A:+alt}", {"A": "1"}, "alt"),
        ("${A+alt}", {}, ""),
        ("$$A", {"A": "1"}, "$A"),
        ("${A?boom}", {"A": ""}, ""),
    ],
)
def test_interpolation(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env) == expected


def test_required_variable_is_an_error() -> None:
    with pytest.raises(InputError, match="required variable A: set A please"):
        interpolate("${A:?set A please}", {})


def test_env_file_syntax() -> None:
    text = "A=1\n# c\nexport B=\"two words\"\nC='$x'\nD=v # trailing\nE\n"
    assert parse_env_file(text) == {"A": "1", "B": "two words", "C": "$x", "D": "v"}


def test_required_variable_in_a_file(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  a:\n    image: ${IMG:?need an image}\n")
    with pytest.raises(InputError, match=r"compose\.yaml: required variable IMG: need an image"):
        load_compose([str(f)], env={})


def test_named_volume_with_bind_device_is_a_bind(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(
        "services:\n  a:\n    image: x:1\n    volumes: [sock:/s]\n"
        "volumes:\n  sock:\n    driver: local\n    driver_opts:\n"
        "      type: none\n      o: bind\n      device: /var/run\n"
    )
    [svc] = load_compose([str(f)], env={}).services
    assert svc.spec.mounts == (Mount("bind", "/var/run", "/s", False),)


def test_from_compose_service_classmethod() -> None:
    spec = specs.from_compose_service(
        "api", {"image": "a:1", "cap_drop": ["ALL"], "read_only": True, "user": 1000}
    )
    assert spec.cap_drop == ("ALL",) and spec.read_only_rootfs and spec.user == "1000"
    assert spec.origin == "compose"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services: [a]\n", "services` must be a mapping"),
        ("services:\n  a:\n    cap_add: 3\n", "cap_add: expected a list"),
        ("services:\n  a:\n    mem_limit: lots\n", "invalid size"),
        ("services:\n  a:\n    extends: a\n", "extends cycle"),
        ("services:\n  a:\n    ports: ['1:2:3:4']\n", "invalid port"),
        ("- a\n", "must be a mapping"),
    ],
)
def test_bad_projects_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        load_compose([str(f)], env={})
    assert "\n" not in str(info.value)


def test_compose_only_rules_with_locations(tmp_path: Path) -> None:
    from dockward.lint.engine import LintOptions, lint_compose

    f = tmp_path / "compose.yaml"
    f.write_text(
        "services:\n"
        "  app:\n"
        "    image: r.example/app:1\n"
        "    build:\n"
        "      args: {GH_TOKEN: ghp_0123456789abcdefghijABCDEFGHIJ012345}\n"
        "    oom_kill_disable: true\n"
        "    extra_hosts: ['pypi.org:10.1.1.1', 'cache:10.1.1.2']\n"
        "    volumes_from: [other]\n"
        "  other:\n"
        "    image: r.example/other:1\n"
        "    extra_hosts: {db: 10.0.0.2}\n"
    )
    results, _ = lint_compose([str(f)], LintOptions(env={}))
    moved = {"DW-K001", "DW-C037", "DW-C038", "DW-C039"}
    fails = sorted(
        (r.rule.id, r.location.line, r.location.column)
        for r in results
        if r.rule.id in moved and r.status is Status.FAIL and r.location
    )
    # volumes_from, oom_kill_disable and extra_hosts are container rules now (every input).
    # Items of lists point at the item: `volumes_from: [other]`, the pypi.org entry.
    assert fails == [("DW-C037", 8, 20), ("DW-C038", 6, 5), ("DW-C039", 7, 19), ("DW-K001", 4, 5)]


def test_built_services_inherit_user_and_healthcheck_from_their_dockerfile(tmp_path: Path) -> None:
    from dockward.lint.engine import LintOptions, lint_compose

    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM x:1\nHEALTHCHECK CMD true\nUSER 10001\n")
    (tmp_path / "app" / "root.Dockerfile").write_text("FROM x:1\nUSER root\n")
    f = tmp_path / "compose.yaml"
    f.write_text(
        "services:\n  a:\n    build: ./app\n"
        "  b:\n    build:\n      context: app\n      dockerfile: root.Dockerfile\n"
        "  c:\n    image: x:1\n"
    )
    results, _ = lint_compose([str(f)], LintOptions(env={}))
    status = {
        (r.target.split()[-1], r.rule.id): r.status
        for r in results
        if r.rule.id in ("DW-C031", "DW-C026")
    }
    assert status[("a", "DW-C031")] is Status.PASS and status[("a", "DW-C026")] is Status.PASS
    assert status[("b", "DW-C031")] is Status.FAIL  # USER root in its Dockerfile
    assert status[("c", "DW-C031")] is Status.FAIL  # image user unknown: no user set


def _include_project(tmp_path: Path) -> Path:
    """app/compose.yaml includes ../db/compose.yaml (short form) and ops/ (long form)."""
    (tmp_path / "app").mkdir()
    (tmp_path / "db").mkdir()
    (tmp_path / "ops" / "conf").mkdir(parents=True)
    (tmp_path / "app" / "compose.yaml").write_text(
        "include:\n"
        "  - ../db/compose.yaml\n"
        "  - path: ../ops/compose.yaml\n"
        "    project_directory: ../ops/conf\n"
        "    env_file: ../ops/ops.env\n"
        "services:\n"
        "  web:\n"
        "    image: r.example/web:1\n"
        "    depends_on: [db]\n"
    )
    (tmp_path / "db" / ".env").write_text("DB_TAG=16.4\n")
    (tmp_path / "db" / "compose.yaml").write_text(
        "services:\n"
        "  db:\n"
        "    image: r.example/postgres:${DB_TAG}\n"
        "    privileged: true\n"
        "    volumes: [./data:/var/lib/postgresql/data]\n"
    )
    (tmp_path / "ops" / "ops.env").write_text("AGENT=r.example/agent:2\n")
    (tmp_path / "ops" / "compose.yaml").write_text(
        "services:\n  agent:\n    image: ${AGENT}\n    volumes: [./state:/state]\n"
    )
    return tmp_path / "app" / "compose.yaml"


def test_include_brings_in_services_with_their_own_paths_and_env(tmp_path: Path) -> None:
    main = _include_project(tmp_path)
    project = load_compose([str(main)], env={})
    by_name = {s.name: s for s in project.services}
    assert set(by_name) == {"web", "db", "agent"}
    db = by_name["db"]
    assert db.spec.image == "r.example/postgres:16.4"  # from db/.env, not app's
    assert db.spec.mounts[0].source == str(tmp_path / "db" / "data")  # relative to db/
    assert db.location.path == str(tmp_path / "db" / "compose.yaml") and db.location.line == 2
    agent = by_name["agent"]
    assert agent.spec.image == "r.example/agent:2"  # from the include's env_file
    assert agent.spec.mounts[0].source == str(tmp_path / "ops" / "conf" / "state")
    assert str(tmp_path / "db" / "compose.yaml") in project.files
    # The container rules see the included service, and point into its own file.
    results = lint_compose_service(db, default_rules())
    privileged = next(r for r in results if r.rule.id == "DW-C001")
    assert privileged.status is Status.FAIL
    assert privileged.location is not None
    assert privileged.location.path == db.location.path and privileged.location.line == 4


@pytest.mark.parametrize(
    "main, other, message",
    [
        (
            "include: [other.yaml]\nservices: {a: {image: x}}\n",
            "services: {a: {image: y}}\n",
            "service 'a' is also defined in",
        ),
        ("include: [other.yaml]\n", "include: [compose.yaml]\n", "include cycle through"),
        ("include: [missing.yaml]\n", "", "missing.yaml"),
        ("include: {path: other.yaml}\n", "", "`include` must be a list"),
        ("include: [{project_directory: .}]\n", "", "an include entry needs a path"),
        ("include: [{path: other.yaml, envfile: x}]\n", "", "unknown include key 'envfile'"),
    ],
)
def test_bad_includes_are_one_line_errors(
    tmp_path: Path, main: str, other: str, message: str
) -> None:
    (tmp_path / "compose.yaml").write_text(main)
    if other:
        (tmp_path / "other.yaml").write_text(other)
    with pytest.raises(InputError, match=message) as info:
        load_compose([str(tmp_path / "compose.yaml")], env={})
    assert "\n" not in str(info.value)
