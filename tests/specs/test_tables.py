"""No silent drop: every `docker run` flag and every compose service key is modelled (and then
reaches the spec from every input) or listed as irrelevant with a reason.

The full lists are recorded from the sources: tests/fixtures/specs/docker-run-flags.txt from
docker/cli's flag registrations, compose-service-keys.txt from the compose-spec JSON schema.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from dockward import specs
from dockward.catalog import default_rules
from dockward.lint.compose import load_compose
from dockward.lint.engine import LintOptions, lint_compose, lint_run_line
from dockward.model.container import ContainerSpec
from dockward.model.finding import Status
from dockward.policy.admission import ImageGate, judge_request, refusals
from dockward.policy.model import parse_policy
from dockward.specs.tables import COMPOSE_KEYS, RUN_FLAGS, Setting
from tests.conftest import FIXTURES, run_cli

FLAGS_FILE = FIXTURES / "specs" / "docker-run-flags.txt"
KEYS_FILE = FIXTURES / "specs" / "compose-service-keys.txt"
BODIES = Path(__file__).parent.parent / "policy" / "fixtures" / "create-bodies"
SPEC_FIELDS = {f.name for f in dataclasses.fields(ContainerSpec)}


def docker_flags() -> dict[str, tuple[str, str]]:
    out = {}
    for line in FLAGS_FILE.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, kind, *short = line.split()
        out[name] = (kind, short[0] if short else "")
    return out


def compose_keys() -> list[str]:
    return [k for k in KEYS_FILE.read_text().splitlines() if k.strip() and not k.startswith("#")]


def test_the_recorded_lists_are_complete() -> None:
    flags = docker_flags()
    assert len(flags) >= 100 and {"use-api-socket", "volumes-from", "gpus"} <= set(flags)
    assert len(compose_keys()) >= 90 and "use_api_socket" in compose_keys()


@pytest.mark.parametrize("flag", sorted(docker_flags()))
def test_every_docker_run_flag_is_listed(flag: str) -> None:
    kind, short = docker_flags()[flag]
    setting = RUN_FLAGS.get(flag)
    assert setting is not None, f"--{flag} is neither modelled nor listed as irrelevant"
    assert setting.takes_value == (kind == "value"), f"--{flag}: wrong kind"
    assert setting.short == short, f"--{flag}: wrong short form"


@pytest.mark.parametrize("key", compose_keys())
def test_every_compose_service_key_is_listed(key: str) -> None:
    assert key in COMPOSE_KEYS, f"{key} is neither modelled nor listed as irrelevant"


def test_no_listed_flag_or_key_is_invented() -> None:
    assert set(RUN_FLAGS) == set(docker_flags())
    assert set(COMPOSE_KEYS) == set(compose_keys())


@pytest.mark.parametrize(
    ("name", "setting"),
    [*(("--" + k, v) for k, v in RUN_FLAGS.items()), *COMPOSE_KEYS.items()],
)
def test_each_entry_is_modelled_or_says_why_not(name: str, setting: Setting) -> None:
    assert setting.modelled != bool(setting.irrelevant), name
    assert set(setting.fields) <= SPEC_FIELDS, name
    if setting.irrelevant:
        assert len(setting.irrelevant) > 15, name


# One example per modelled run flag: the value makes the named spec fields differ from a run
# line without the flag.
RUN_EXAMPLES: dict[str, list[str]] = {
    "add-host": ["--add-host", "db:10.0.0.2"],
    "cap-add": ["--cap-add", "SYS_ADMIN"],
    "cap-drop": ["--cap-drop", "ALL"],
    "cgroup-parent": ["--cgroup-parent", "/x"],
    "cgroupns": ["--cgroupns", "host"],
    "cpu-quota": ["--cpu-quota", "50000"],
    "cpu-shares": ["-c", "512"],
    "cpus": ["--cpus", "1.5"],
    "cpuset-cpus": ["--cpuset-cpus", "0-1"],
    "device": ["--device", "/dev/fuse"],
    "device-cgroup-rule": ["--device-cgroup-rule", "b 8:* rwm"],
    "entrypoint": ["--entrypoint", "/bin/sh"],
    "env": ["-e", "A=1"],
    "gpus": ["--gpus", "all"],
    "health-cmd": ["--health-cmd", "true"],
    "ipc": ["--ipc", "host"],
    "label": ["-l", "a=b"],
    "memory": ["-m", "64m"],
    "memory-swap": ["--memory-swap", "128m"],
    "mount": ["--mount", "type=bind,source=/etc,target=/e"],
    "name": ["--name", "web"],
    "net": ["--net", "host"],
    "ip": ["--network", "app", "--ip", "172.30.99.2"],
    "ip6": ["--network", "app", "--ip6", "fd00::2"],
    "network": ["--network", "host"],
    "no-healthcheck": ["--no-healthcheck"],
    "oom-kill-disable": ["--oom-kill-disable"],
    "oom-score-adj": ["--oom-score-adj", "-1000"],
    "pid": ["--pid", "host"],
    "pids-limit": ["--pids-limit", "10"],
    "privileged": ["--privileged"],
    "publish": ["-p", "80:80"],
    "publish-all": ["-P"],
    "read-only": ["--read-only"],
    "restart": ["--restart", "always"],
    "runtime": ["--runtime", "runsc"],
    "security-opt": ["--security-opt", "systempaths=unconfined"],
    "sysctl": ["--sysctl", "net.ipv4.ip_forward=1"],
    "tmpfs": ["--tmpfs", "/tmp"],
    "ulimit": ["--ulimit", "nofile=10:20"],
    "use-api-socket": ["--use-api-socket"],
    "user": ["-u", "1000"],
    "userns": ["--userns", "host"],
    "uts": ["--uts", "host"],
    "volume": ["-v", "/etc:/e"],
    "volumes-from": ["--volumes-from", "other"],
}


@pytest.mark.parametrize("flag", sorted(k for k, v in RUN_FLAGS.items() if v.modelled))
def test_each_modelled_run_flag_reaches_the_spec(flag: str) -> None:
    assert flag in RUN_EXAMPLES, f"no example for --{flag}"
    base = specs.from_run_argv(["busybox"])
    spec = specs.from_run_argv([*RUN_EXAMPLES[flag], "busybox"])
    for name in RUN_FLAGS[flag].fields:
        assert getattr(spec, name) != getattr(base, name), (flag, name)


COMPOSE_EXAMPLES: dict[str, Any] = {
    "cap_add": ["SYS_ADMIN"],
    "cap_drop": ["ALL"],
    "cgroup": "host",
    "cgroup_parent": "/x",
    "command": ["sh"],
    "container_name": "web1",
    "cpu_quota": 50000,
    "cpu_shares": 512,
    "cpus": 1.5,
    "cpuset": "0-1",
    "deploy": {
        "resources": {
            "limits": {"memory": "64m", "cpus": "1", "pids": 10},
            "reservations": {"devices": [{"capabilities": ["gpu"]}]},
        },
        "restart_policy": {"condition": "on-failure"},
    },
    "device_cgroup_rules": ["b 8:* rwm"],
    "devices": ["/dev/fuse"],
    "entrypoint": ["/bin/sh"],
    "env_file": "app.env",
    "environment": {"A": "1"},
    "extra_hosts": ["db:10.0.0.2"],
    "gpus": "all",
    "healthcheck": {"test": ["CMD", "true"]},
    "image": "other:1",
    "ipc": "host",
    "labels": {"a": "b"},
    "mem_limit": "64m",
    "memswap_limit": "128m",
    "network_mode": "host",
    "networks": {"app": {"ipv4_address": "172.30.99.2"}},
    "oom_kill_disable": True,
    "oom_score_adj": -1000,
    "pid": "host",
    "pids_limit": 10,
    "ports": ["80:80"],
    "privileged": True,
    "read_only": True,
    "restart": "always",
    "runtime": "runsc",
    "secrets": ["token"],
    "security_opt": ["systempaths=unconfined"],
    "sysctls": {"net.ipv4.ip_forward": "1"},
    "tmpfs": ["/tmp"],
    "ulimits": {"nofile": 10},
    "use_api_socket": True,
    "user": "1000",
    "userns_mode": "host",
    "uts": "host",
    "volumes": ["/etc:/e"],
    "volumes_from": ["other"],
}


def _service(tmp_path: Path, extra: dict[str, Any]) -> ContainerSpec:
    (tmp_path / "app.env").write_text("TOKEN=x\n")
    (tmp_path / "token.txt").write_text("x\n")
    doc = {
        "services": {"app": {"image": "busybox", **extra}},
        "secrets": {"token": {"file": "./token.txt"}},
    }
    path = tmp_path / "compose.yaml"
    path.write_text(json.dumps(doc))
    return load_compose([str(path)], env={}).services[0].spec


@pytest.mark.parametrize("key", sorted(k for k, v in COMPOSE_KEYS.items() if v.modelled))
def test_each_modelled_compose_key_reaches_the_spec(key: str, tmp_path: Path) -> None:
    assert key in COMPOSE_EXAMPLES, f"no example for {key}"
    base = _service(tmp_path, {})
    spec = _service(tmp_path, {key: COMPOSE_EXAMPLES[key]})
    for name in COMPOSE_KEYS[key].fields:
        assert getattr(spec, name) != getattr(base, name), (key, name)


# --- the engine socket of --use-api-socket / use_api_socket: DW-C008 on every input -------


def _failed(results: list[Any]) -> set[str]:
    return {r.rule.id for r in results if r.status is Status.FAIL}


def test_api_socket_fails_dw_c008_in_lint(tmp_path: Path) -> None:
    opts = LintOptions(env={})
    assert "DW-C008" in _failed(lint_run_line("docker run --use-api-socket busybox", opts))
    assert "DW-C008" not in _failed(lint_run_line("docker run busybox", opts))
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  app:\n    image: busybox\n    use_api_socket: true\n")
    results, _ = lint_compose([str(path)], opts)
    [hit] = [r for r in results if r.rule.id == "DW-C008" and r.status is Status.FAIL]
    assert hit.location is not None and hit.location.line == 4  # at the key
    path.write_text("services:\n  app:\n    image: busybox\n    use_api_socket: false\n")
    results, _ = lint_compose([str(path)], opts)
    assert "DW-C008" not in _failed(results)


def test_api_socket_fails_dw_c008_in_policy_check(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("admission: {}\n")  # the default deny list

    def failed(*what: str) -> tuple[int, set[str]]:
        res = run_cli("policy", "check", "--policy", str(policy), "-f", "json", *what)
        assert res.code in (0, 1), res.err
        doc = json.loads(res.out)
        return res.code, {r["rule_id"] for r in doc["results"] if r["status"] == "fail"}

    code, bad = failed("--run", "docker run --use-api-socket busybox")
    assert code == 1 and "DW-C008" in bad
    assert "DW-C008" not in failed("--run", "docker run busybox")[1]
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  app:\n    image: busybox\n    use_api_socket: true\n")
    assert "DW-C008" in failed("--compose", str(path))[1]


def _refused(body: Any) -> set[str]:
    adm = parse_policy({"admission": {}}).admission
    results = judge_request("containers.create", {}, body, adm, ImageGate())
    return {r.rule.id for r in refusals(results)}


def test_api_socket_fails_dw_c008_in_the_proxy_create_body() -> None:
    # Recorded from the docker CLI (`docker create --use-api-socket`): it binds the socket it
    # talks to at /var/run/docker.sock.
    body = specs.loads((BODIES / "use-api-socket.json").read_bytes())
    assert "DW-C008" in _refused(body)
    assert "DW-C008" not in _refused(specs.loads((BODIES / "hardened.json").read_bytes()))


@pytest.mark.parametrize(
    ("fixture", "run_line", "compose", "rule"),
    [
        ("volumes-from", "--volumes-from other", "volumes_from: [other]", "DW-C037"),
        ("oom-kill-disable", "--oom-kill-disable", "oom_kill_disable: true", "DW-C038"),
        (
            "add-host",
            "--add-host registry-1.docker.io:203.0.113.7",
            'extra_hosts: ["registry-1.docker.io:203.0.113.7"]',
            "DW-C039",
        ),
        ("gpus", "--gpus all", "gpus: all", "DW-C040"),
        ("runtime", "--runtime custom-runtime", "runtime: custom-runtime", "DW-C041"),
        (
            "systempaths",
            "--security-opt systempaths=unconfined",
            "security_opt: [systempaths=unconfined]",
            "DW-C042",
        ),
    ],
)
def test_formerly_dropped_settings_are_judged_on_every_input(
    fixture: str, run_line: str, compose: str, rule: str, tmp_path: Path
) -> None:
    entry = default_rules().get(rule)
    from dockward.rules import Context, run_check

    def fails(spec: ContainerSpec) -> bool:
        return any(r.status is Status.FAIL for r in run_check(entry, spec, Context(), target="t"))

    body = specs.loads((BODIES / f"{fixture}.json").read_bytes())
    path = tmp_path / "compose.yaml"
    path.write_text(f"services:\n  app:\n    image: busybox\n    {compose}\n")
    inputs = {
        "create body": specs.from_create_body(body),
        "run line": specs.from_run_line(f"docker run {run_line} busybox"),
        "compose": load_compose([str(path)], env={}).services[0].spec,
    }
    for what, spec in inputs.items():
        assert fails(spec), (rule, what)
    clean = specs.from_run_line("docker run busybox")
    assert not fails(clean) and not fails(
        specs.from_create_body(specs.loads((BODIES / "hardened.json").read_bytes()))
    )
