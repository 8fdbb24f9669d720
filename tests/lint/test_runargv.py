"""`docker run` argument vectors -> ContainerSpec."""

from __future__ import annotations

import pytest

from dockward import specs
from dockward.errors import InputError
from dockward.lint import spec_from_run_line, split_command_line
from dockward.model import Device, Healthcheck, Mount, PortBinding, Ulimit


def test_full_line() -> None:
    spec = spec_from_run_line(
        "sudo docker -H unix:///x.sock container run -dit --rm --name web --privileged "
        "-v /:/host:ro,rshared --mount type=bind,src=/var/run/docker.sock,dst=/s,readonly "
        "-p 127.0.0.1:8080:80/udp -p 443 --cap-add=SYS_ADMIN --cap-drop ALL "
        "--security-opt seccomp=unconfined --security-opt no-new-privileges "
        "-e A=b -eC=d -u 0 --net host --pid=host --ipc host --uts host --userns host "
        "--cgroupns host -m 1g --memory-swap=-1 --cpus 1.5 --pids-limit 50 "
        "--ulimit nofile=1024:2048 --ulimit nproc=-1 --device /dev/sda:/dev/xvda:r "
        "--restart on-failure:3 --health-cmd 'curl -f localhost' --read-only "
        "--sysctl kernel.shmmax=1 -l a=b --tmpfs /run:rw,noexec "
        "registry.example/app:1 sh -c 'echo hi'"
    )
    assert spec.origin == "run" and spec.name == "web"
    assert spec.image == "registry.example/app:1"
    assert spec.command == ("sh", "-c", "echo hi")
    assert spec.privileged and spec.read_only_rootfs
    assert spec.mounts == (
        Mount("bind", "/", "/host", True, "rshared"),
        Mount("bind", "/var/run/docker.sock", "/s", True),
        Mount("tmpfs", "", "/run", False),
    )
    assert spec.ports == (PortBinding(80, "udp", "127.0.0.1", 8080), PortBinding(443, "tcp", "", 0))
    assert spec.cap_add == ("SYS_ADMIN",) and spec.cap_drop == ("ALL",)
    assert spec.security.seccomp == "unconfined" and spec.security.no_new_privileges is True
    assert spec.env == ("A=b", "C=d") and spec.user == "0"
    assert (spec.network_mode, spec.pid_mode, spec.ipc_mode, spec.uts_mode) == ("host",) * 4
    assert spec.userns_mode == "host" and spec.cgroupns_mode == "host"
    assert spec.memory == 1024**3 and spec.memory_swap == -1
    assert spec.nano_cpus == 1_500_000_000 and spec.pids_limit == 50
    assert spec.ulimits == (Ulimit("nofile", 1024, 2048), Ulimit("nproc", -1, -1))
    assert spec.devices == (Device("/dev/sda", "/dev/xvda", "r"),)
    assert spec.restart.name == "on-failure" and spec.restart.max_retries == 3
    assert spec.healthcheck == Healthcheck(("CMD-SHELL", "curl -f localhost"))
    assert spec.sysctls == {"kernel.shmmax": "1"} and spec.labels == {"a": "b"}


def test_continuations_and_comments() -> None:
    argv = split_command_line("docker run \\\n  --privileged \\\n  alpine  # trailing comment")
    assert argv == ["docker", "run", "--privileged", "alpine"]


def test_bare_flags_without_docker_run() -> None:
    spec = specs.from_run_argv(["--privileged=false", "--no-healthcheck", "alpine:3"])
    assert not spec.privileged and spec.healthcheck == Healthcheck(("NONE",))


def test_value_looking_like_a_flag_is_a_value() -> None:
    spec = specs.from_run_argv(["-e", "--privileged", "alpine"])
    assert not spec.privileged and spec.env == ("--privileged",)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["docker", "run", "--bogus", "x"], "unknown flag --bogus"),
        (["docker", "run", "-Z", "x"], "unknown flag -Z"),
        (["docker", "run", "--name"], "needs a value"),
        (["docker", "run", "-d"], "no image"),
        (["docker", "ps"], "expected `docker run`"),
        (["docker", "run", "-m", "lots", "x"], "invalid size"),
        (["docker", "run", "--restart", "sometimes", "x"], "unknown policy"),
    ],
)
def test_bad_argv_is_an_input_error(argv: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        specs.from_run_argv(argv)


def test_unbalanced_quote() -> None:
    with pytest.raises(InputError, match="docker run line"):
        spec_from_run_line("docker run 'alpine")
