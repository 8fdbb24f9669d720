"""ContainerSpec: one normalised container configuration, whatever it was read from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dockward.model.finding import Location

# The capabilities runc grants a container by default (Docker 20.10 and later).
DEFAULT_CAPABILITIES = frozenset(
    {
        "CHOWN",
        "DAC_OVERRIDE",
        "FSETID",
        "FOWNER",
        "MKNOD",
        "NET_RAW",
        "SETGID",
        "SETUID",
        "SETFCAP",
        "SETPCAP",
        "NET_BIND_SERVICE",
        "SYS_CHROOT",
        "KILL",
        "AUDIT_WRITE",
    }
)


def normalise_capability(name: str) -> str:
    """`cap_sys_admin`, `CAP_SYS_ADMIN` and `SYS_ADMIN` are the same capability."""
    cap = name.strip().upper()
    return cap[4:] if cap.startswith("CAP_") else cap


@dataclass(frozen=True, slots=True)
class Mount:
    type: str  # bind, volume, tmpfs, npipe
    source: str
    target: str
    read_only: bool = False
    propagation: str = ""


@dataclass(frozen=True, slots=True)
class PortBinding:
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""
    host_port: int = 0  # 0: chosen by the daemon

    @property
    def all_interfaces(self) -> bool:
        return self.host_ip in ("", "0.0.0.0", "::", "[::]")


@dataclass(frozen=True, slots=True)
class Device:
    host_path: str
    container_path: str
    permissions: str = "rwm"


@dataclass(frozen=True, slots=True)
class Ulimit:
    name: str
    soft: int
    hard: int


@dataclass(frozen=True, slots=True)
class AddressPool:
    """One IPAM pool of a network: its subnet and the sub-range the engine hands out
    addresses from ("": the whole subnet)."""

    subnet: str
    ip_range: str = ""


@dataclass(frozen=True, slots=True)
class StaticAddress:
    """A fixed address on a user-defined network (compose `ipv4_address`, `docker run --ip`,
    the engine's IPAMConfig). `handed_out`: the range the engine hands out other containers'
    addresses from on that network, from its IPAM config (its `ip_range`, else its subnet);
    "" when no pool of the network holds the address, None when the network is not known."""

    network: str
    address: str
    handed_out: str | None = None


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    name: str = ""  # "", no, always, unless-stopped, on-failure
    max_retries: int = 0


@dataclass(frozen=True, slots=True)
class ExecSession:
    """A `docker exec` the daemon still holds for a container (`GET /exec/{id}/json`)."""

    id: str
    command: tuple[str, ...]
    user: str = ""  # "" = the container's user
    privileged: bool = False
    running: bool = False

    @property
    def as_root(self) -> bool:
        """Run with an explicit root user (`--user root`, `-u 0`, `-u 0:0`)."""
        name = self.user.partition(":")[0].strip()
        return name in ("root", "0")


@dataclass(frozen=True, slots=True)
class Healthcheck:
    test: tuple[str, ...] = ()

    @property
    def disabled(self) -> bool:
        return not self.test or self.test[0] == "NONE"


@dataclass(frozen=True, slots=True)
class SecurityOptions:
    """`--security-opt` values, parsed."""

    seccomp: str | None = None  # None: daemon default; "unconfined"; a profile (path or JSON)
    apparmor: str | None = None
    selinux: tuple[str, ...] = ()
    no_new_privileges: bool | None = None  # None: not set on the container
    raw: tuple[str, ...] = ()

    @classmethod
    def parse(cls, options: list[str] | tuple[str, ...] | None) -> SecurityOptions:
        seccomp: str | None = None
        apparmor: str | None = None
        selinux: list[str] = []
        nnp: bool | None = None
        for opt in options or ():
            key, sep, value = opt.partition("=")
            if not sep:
                key, sep, value = opt.partition(":")
            key = key.strip().lower()
            match key:
                case "seccomp":
                    seccomp = value
                case "apparmor":
                    apparmor = value
                case "label":
                    selinux.append(value)
                case "no-new-privileges":
                    nnp = value.strip().lower() in ("", "true", "1", "yes")
                case _:
                    pass
        return cls(seccomp, apparmor, tuple(selinux), nnp, tuple(options or ()))


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """Everything the container rules judge. Built by `dockward.specs`, one reader per source
    (inspect, compose service, `docker run` argv, API request bodies, hardened proposals)."""

    name: str = ""
    id: str = ""
    image: str = ""
    image_id: str = ""
    state: str = ""  # created, running, exited, ... ("" when not a live container)
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    user: str = ""
    mounts: tuple[Mount, ...] = ()
    network_mode: str = ""
    static_addresses: tuple[StaticAddress, ...] = ()
    pid_mode: str = ""
    ipc_mode: str = ""
    uts_mode: str = ""
    userns_mode: str = ""
    cgroupns_mode: str = ""
    cgroup_parent: str = ""
    security: SecurityOptions = field(default_factory=SecurityOptions)
    apparmor_profile: str | None = None  # effective profile reported by the engine
    read_only_rootfs: bool = False
    memory: int = 0
    memory_swap: int = 0
    cpu_shares: int = 0
    nano_cpus: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    pids_limit: int | None = None
    ulimits: tuple[Ulimit, ...] = ()
    devices: tuple[Device, ...] = ()
    device_cgroup_rules: tuple[str, ...] = ()
    ports: tuple[PortBinding, ...] = ()
    publish_all: bool = False
    extra_hosts: tuple[str, ...] = ()  # "name:address" lines added to /etc/hosts
    volumes_from: tuple[str, ...] = ()  # containers whose mounts this one inherits
    oom_kill_disable: bool = False
    oom_score_adj: int = 0
    device_requests: tuple[str, ...] = ()  # `--gpus`/DeviceRequests, "driver=..,count=.."
    runtime: str = ""  # "" = the daemon's default runtime
    unmasked_paths: bool = False  # /proc and /sys unmasked (`systempaths=unconfined`)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    healthcheck: Healthcheck | None = None  # None: inherited from the image (unknown here)
    health_status: str | None = None  # runtime: starting, healthy, unhealthy
    env: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    sysctls: Mapping[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    processes: tuple[str, ...] | None = None  # runtime process list (None: not known)
    # Runtime: exec sessions the daemon still holds (running, or ended minutes ago); None: not
    # known (a compose file, a create body, a container seen without the engine).
    execs: tuple[ExecSession, ...] | None = None
    source: Location | None = None
    origin: str = "inspect"

    @property
    def display_name(self) -> str:
        return self.name or self.id[:12] or self.image or "container"

    @property
    def capabilities(self) -> frozenset[str]:
        """The effective capability set (before privileged)."""
        drop = {normalise_capability(c) for c in self.cap_drop}
        add = {normalise_capability(c) for c in self.cap_add}
        base = set() if "ALL" in drop else set(DEFAULT_CAPABILITIES - drop)
        return frozenset(base | add)

    def env_map(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out

    def with_changes(self, **changes: Any) -> ContainerSpec:
        return replace(self, **changes)
