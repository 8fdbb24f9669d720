"""Container rules: pure functions over ContainerSpec, shared by audit, lint, proxy, harden, update.

CIS references are CIS Docker Benchmark v1.6.0 section 5 unless noted.
"""

from __future__ import annotations

import contextlib
import ipaddress
import posixpath
import re
from typing import Any

from dockward.model.container import (
    ContainerSpec,
    Device,
    ExecSession,
    Healthcheck,
    Mount,
    PortBinding,
    RestartPolicy,
    SecurityOptions,
    StaticAddress,
    Ulimit,
    normalise_capability,
)
from dockward.model.finding import Severity
from dockward.rules.devices import excessive_grant
from dockward.rules.hostpaths import sensitive_reason
from dockward.rules.registry import Context, Fail, Info, Outcome, Pass, RuleSet, Skip
from dockward.rules.secrets import secret_env_findings
from dockward.specs.addresses import in_range

rules = RuleSet("container")

CRIT, HIGH, MED, LOW, INFO = (
    Severity.CRITICAL,
    Severity.HIGH,
    Severity.MEDIUM,
    Severity.LOW,
    Severity.INFO,
)


def hardened_example() -> ContainerSpec:
    """A container that passes every container rule: the base of the rule examples."""
    return ContainerSpec(
        name="example",
        image="registry.example/app:1.2.3",
        state="running",
        cap_drop=("ALL",),
        user="1000:1000",
        network_mode="appnet",
        security=SecurityOptions(no_new_privileges=True, raw=("no-new-privileges:true",)),
        apparmor_profile="docker-default",
        read_only_rootfs=True,
        memory=256 * 1024 * 1024,
        cpu_shares=512,
        pids_limit=100,
        ports=(PortBinding(8080, "tcp", "127.0.0.1", 8080),),
        restart=RestartPolicy("on-failure", 5),
        healthcheck=Healthcheck(("CMD", "true")),
        health_status="healthy",
        processes=("app",),
        execs=(),
    )


def _ex(**bad: Any) -> tuple[ContainerSpec, ContainerSpec]:
    base = hardened_example()
    return base.with_changes(**bad), base


# Capabilities that give a container a way out, or power over the host.
DANGEROUS_CAPABILITIES: dict[str, str] = {
    "ALL": "every capability",
    "SYS_ADMIN": "mount, namespaces, BPF: near-root on the host",
    "SYS_PTRACE": "trace and inject into other processes",
    "SYS_MODULE": "load kernel modules",
    "SYS_RAWIO": "raw I/O on devices and memory",
    "SYS_BOOT": "reboot the host",
    "SYS_TIME": "set the host clock",
    "DAC_READ_SEARCH": "read any file by handle (the 'shocker' escape)",
    "NET_ADMIN": "reconfigure host-visible networking",
    "BPF": "load BPF programs",
    "PERFMON": "kernel performance monitoring",
    "MAC_ADMIN": "change the MAC policy",
    "MAC_OVERRIDE": "bypass the MAC policy",
    "SYSLOG": "read and clear the kernel log",
    "SYS_RESOURCE": "override resource limits",
    "LINUX_IMMUTABLE": "change immutable files",
    "AUDIT_CONTROL": "change the audit configuration",
    "WAKE_ALARM": "wake the host",
    "BLOCK_SUSPEND": "block host suspend",
}

ENGINE_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/docker",
    "/run/docker",
    "/run/containerd",
    "/var/run/containerd",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
    "/var/run/crio/crio.sock",
    "/run/user",
)


def _norm(path: str) -> str:
    return posixpath.normpath(path) if path else ""


def _under(path: str, tree: str) -> bool:
    return path == tree or (tree != "/" and path.startswith(tree + "/"))


def _binds(spec: ContainerSpec) -> list[Mount]:
    return [m for m in spec.mounts if m.type == "bind"]


# Where a container expects the engine's API: whatever is bound there is an engine socket
# (`docker run --use-api-socket` binds the socket the CLI talks to, whatever its host path).
ENGINE_SOCKET_TARGETS = ("/var/run/docker.sock", "/run/docker.sock")


def engine_socket_mount(mount: Mount) -> bool:
    """Does this bind expose an engine socket (the socket itself or a directory holding it, or
    anything bound where the container looks for the engine's socket)?"""
    if mount.type == "bind" and _norm(mount.target) in ENGINE_SOCKET_TARGETS:
        return True
    src = _norm(mount.source)
    if src.endswith((".sock", "docker.sock")) and any(
        x in posixpath.basename(src) for x in ("docker", "containerd", "podman", "crio")
    ):
        return True
    return any(src == s or _under(s, src) for s in ENGINE_SOCKETS if src not in ("/", ""))


@rules.rule(
    "DW-C001",
    "Container is not privileged",
    severity=CRIT,
    kind="container",
    fields=("privileged",),
    aliases=("privileged",),
    groups=("default-deny", "exec-body"),
    cis="5.5",
    remediation="Remove `--privileged` (compose: `privileged: false`); add only the capabilities "
    "and devices the workload needs (`dockward profile caps`).",
    examples=lambda: _ex(privileged=True),
)
def not_privileged(spec: ContainerSpec, ctx: Context) -> Outcome:
    """A privileged container has every capability, every device and no seccomp or AppArmor
    confinement: root in it is root on the host."""
    if spec.privileged:
        return Fail("container runs privileged", {"privileged": True})
    return Pass()


@rules.rule(
    "DW-C002",
    "No capabilities added beyond the default set",
    severity=MED,
    kind="container",
    fields=("cap_add",),
    aliases=("added-capabilities",),
    cis="5.4",
    remediation="Remove `--cap-add` entries the workload does not need (compose: `cap_add`); "
    "start from `--cap-drop ALL` and add back single capabilities.",
    examples=lambda: _ex(cap_add=("NET_BIND_SERVICE", "SETUID"), cap_drop=()),
)
def no_added_capabilities(spec: ContainerSpec, ctx: Context) -> Outcome:
    """Every capability beyond Docker's default fourteen widens what root in the container can
    do to the kernel. Capabilities re-added after `--cap-drop ALL` are counted too."""
    added = sorted({normalise_capability(c) for c in spec.cap_add})
    if "ALL" in {normalise_capability(c) for c in spec.cap_drop}:
        # After drop ALL, re-adding a few defaults is the recommended shape; flag only extras.
        from dockward.model.container import DEFAULT_CAPABILITIES

        added = [c for c in added if c not in DEFAULT_CAPABILITIES]
    if added:
        return Fail(f"capabilities added: {', '.join(added)}", {"cap_add": added})
    return Pass()


@rules.rule(
    "DW-C003",
    "No dangerous capabilities",
    severity=HIGH,
    kind="container",
    fields=("cap_add",),
    aliases=("dangerous-capabilities",),
    groups=("default-deny",),
    cis="5.4",
    references=("docker-bench C.5.3.1-4",),
    remediation="Drop SYS_ADMIN, SYS_PTRACE, SYS_MODULE, DAC_READ_SEARCH, NET_ADMIN, BPF and "
    "the like from `--cap-add`; find what is really needed with `dockward profile caps`.",
    examples=lambda: _ex(cap_add=("SYS_ADMIN",)),
)
def no_dangerous_capabilities(spec: ContainerSpec, ctx: Context) -> Outcome:
    """Some capabilities are an escape by themselves (SYS_ADMIN, SYS_MODULE, DAC_READ_SEARCH,
    SYS_PTRACE with host PID, ...)."""
    found = sorted({normalise_capability(c) for c in spec.cap_add} & set(DANGEROUS_CAPABILITIES))
    if found:
        why = "; ".join(f"{c}: {DANGEROUS_CAPABILITIES[c]}" for c in found)
        return Fail(f"dangerous capabilities added: {why}", {"cap_add": found})
    return Pass()


@rules.rule(
    "DW-C004",
    "All capabilities dropped, needed ones added back",
    severity=LOW,
    kind="container",
    fields=("cap_drop", "privileged"),
    aliases=("capabilities-not-dropped",),
    remediation="Add `--cap-drop ALL` (compose: `cap_drop: [ALL]`) and `--cap-add` only what "
    "`dockward profile caps` reports.",
    examples=lambda: _ex(cap_drop=()),
)
def capabilities_dropped(spec: ContainerSpec, ctx: Context) -> Outcome:
    """Docker's default capability set includes NET_RAW, MKNOD, SETFCAP, DAC_OVERRIDE and more
    that most services never use. Least privilege starts from none."""
    if spec.privileged:
        return Fail("privileged: every capability is granted")
    if "ALL" in {normalise_capability(c) for c in spec.cap_drop}:
        return Pass()
    return Fail(
        "default capabilities kept (no `--cap-drop ALL`)",
        {"capabilities": sorted(spec.capabilities)},
    )


@rules.rule(
    "DW-C005",
    "AppArmor profile applied",
    severity=HIGH,
    kind="container",
    fields=("security", "apparmor_profile", "privileged"),
    aliases=("apparmor-unconfined",),
    groups=("default-deny",),
    cis="5.2",
    remediation="Remove `--security-opt apparmor=unconfined`; use docker-default or a profile "
    "from `dockward profile apparmor` (compose: `security_opt: [apparmor=NAME]`).",
    examples=lambda: _ex(
        security=SecurityOptions(apparmor="unconfined", no_new_privileges=True),
        apparmor_profile="unconfined",
    ),
)
def apparmor_applied(spec: ContainerSpec, ctx: Context) -> Outcome:
    """AppArmor confines what files, mounts and signals a container may use. `unconfined` turns
    it off for that container."""
    if spec.security.apparmor == "unconfined" or spec.apparmor_profile == "unconfined":
        return Fail("AppArmor is disabled for this container (unconfined)")
    if spec.privileged:
        return Fail("privileged containers run unconfined")
    if spec.security.apparmor:
        return Pass(evidence={"profile": spec.security.apparmor})
    if spec.origin == "inspect" and not spec.apparmor_profile:
        if ctx.daemon is not None and ctx.daemon.security_option("apparmor") is None:
            return Skip("AppArmor is not enabled on this host's kernel")
        return Fail("no AppArmor profile applied")
    return Pass(evidence={"profile": spec.apparmor_profile or spec.security.apparmor or "default"})


@rules.rule(
    "DW-C006",
    "SELinux confinement not disabled",
    severity=MED,
    kind="container",
    fields=("security",),
    aliases=("selinux-disabled",),
    cis="5.3",
    remediation="Remove `--security-opt label=disable`; with SELinux enabled on the daemon set "
    "`--security-opt label=type:...` as needed.",
    examples=lambda: _ex(security=SecurityOptions(selinux=("disable",), no_new_privileges=True)),
)
def selinux_applied(spec: ContainerSpec, ctx: Context) -> Outcome:
    """Where the daemon runs with SELinux, `label=disable` (or no label) leaves the container
    unconfined. docker-bench passes this when *any* security option is set; here only labels count."""
    labels = [v.strip() for v in spec.security.selinux]
    if "disable" in labels:
        return Fail("SELinux labelling is disabled (label=disable)")
    if labels:
        return Pass(evidence={"labels": labels})
    if ctx.daemon is not None and ctx.daemon.security_option("selinux") is None:
        return Skip("SELinux is not enabled on the daemon")
    return Pass(evidence={"labels": "engine default"})


@rules.rule(
    "DW-C007",
    "No sensitive host directories mounted",
    severity=HIGH,
    kind="container",
    fields=("mounts",),
    aliases=("sensitive-mounts",),
    groups=("sensitive-mount", "default-deny", "bind-source"),
    cis="5.6",
    remediation="Do not bind-mount /, /etc, /proc, /sys, /dev, /boot, /usr, /lib, "
    "/var/lib/docker, /root, /home or secrets like /etc/shadow; mount only the application's "
    "own directories, read-only where possible (`:ro`).",
    examples=lambda: _ex(mounts=(Mount("bind", "/etc", "/host-etc", read_only=False),)),
)
def no_sensitive_mounts(spec: ContainerSpec, ctx: Context) -> Outcome:
    """A bind mount of a host system directory lets the container read secrets or rewrite the
    host. Judged by what the path is (the lists are in dockward.rules.hostpaths): kernel
    interfaces, engine state and host secrets fail even read-only, as do whole system directories
    (/, /etc, /usr, /usr/bin, /var/lib, ...); below them, writable mounts of code and
    configuration trees (/etc, /usr/bin, /usr/lib, /run, ...) fail. Application data below a
    system directory (/usr/<vendor>/data, /var/lib/app) passes."""
    bad: list[str] = []
    why: dict[str, str] = {}
    for m in _binds(spec):
        src = _norm(m.source)
        if reason := sensitive_reason(src, m.read_only):
            item = f"{src}:{m.target}:{'ro' if m.read_only else 'rw'}"
            bad.append(item)
            why[item] = reason
    if bad:
        return Fail(
            f"sensitive host paths mounted: {', '.join(f'{b} ({why[b]})' for b in bad)}",
            {"mounts": bad},
        )
    return Pass()


@rules.rule(
    "DW-C008",
    "Docker socket not mounted",
    severity=CRIT,
    kind="container",
    fields=("mounts",),
    aliases=("docker-socket",),
    groups=("sensitive-mount", "default-deny", "bind-source"),
    cis="5.32",
    remediation="Remove the docker.sock (or /run, /var/run) mount; give tools that need the API "
    "`dockward proxy` with a policy instead of the raw socket.",
    examples=lambda: _ex(mounts=(Mount("bind", "/var/run/docker.sock", "/var/run/docker.sock"),)),
)
def no_engine_socket(spec: ContainerSpec, ctx: Context) -> Outcome:
    """Whoever holds the engine socket is root on the host. Mounting its directory (/run,
    /var/run) or a containerd/podman socket is the same; read-only does not help."""
    hits = [m.source for m in _binds(spec) if engine_socket_mount(m)]
    if hits:
        return Fail(f"engine socket exposed through {', '.join(hits)}", {"sources": hits})
    return Pass()


@rules.rule(
    "DW-C009",
    "No SSH daemon inside the container",
    severity=MED,
    kind="container",
    fields=("processes",),
    aliases=("ssh-daemon",),
    cis="5.7",
    remediation="Remove sshd from the image; use `docker exec` for access.",
    examples=lambda: _ex(processes=("app", "/usr/sbin/sshd -D")),
)
def no_sshd(spec: ContainerSpec, ctx: Context) -> Outcome:
    """An SSH daemon inside a container is one more service to patch and one more way in."""
    if spec.processes is None:
        return Skip("process list not available (container not running)")
    hits = [p for p in spec.processes if re.search(r"(^|/|\s)sshd(\s|$|:)", p)]
    if hits:
        return Fail("sshd is running", {"processes": hits})
    return Pass()


@rules.rule(
    "DW-C010",
    "No privileged host ports",
    severity=LOW,
    kind="container",
    fields=("ports",),
    aliases=("privileged-ports",),
    cis="5.8",
    remediation="Publish on a host port of 1024 or above (`-p 8080:80`) and put a reverse proxy "
    "in front for 80/443.",
    examples=lambda: _ex(ports=(PortBinding(80, "tcp", "127.0.0.1", 80),)),
)
def no_privileged_host_ports(spec: ContainerSpec, ctx: Context) -> Outcome:
    """Host ports below 1024 are reserved for privileged services."""
    low = [
        f"{p.host_port}->{p.container_port}/{p.protocol}"
        for p in spec.ports
        if 0 < p.host_port < 1024
    ]
    if low:
        return Fail(f"host ports below 1024 published: {', '.join(low)}", {"ports": low})
    return Pass()


def _host_ns(value: str) -> bool:
    return value == "host"


@rules.rule(
    "DW-C011",
    "Host network namespace not shared",
    severity=HIGH,
    kind="container",
    fields=("network_mode",),
    aliases=("host-network",),
    groups=("host-namespace", "default-deny"),
    cis="5.10",
    remediation="Remove `--network host` (compose: `network_mode: host`); publish ports instead.",
    examples=lambda: _ex(network_mode="host"),
)
def no_host_network(spec: ContainerSpec, ctx: Context) -> Outcome:
    """With the host network, the container can bind any host port, sniff and reach services
    listening on localhost."""
    if _host_ns(spec.network_mode):
        return Fail("container uses the host network namespace")
    return Pass()


@rules.rule(
    "DW-C012",
    "Memory limit set",
    severity=MED,
    kind="container",
    fields=("memory",),
    aliases=("no-memory-limit",),
    cis="5.11",
    remediation="Set `--memory 512m` (compose: `mem_limit` or `deploy.resources.limits.memory`).",
    examples=lambda: _ex(memory=0),
)
def memory_limited(spec: ContainerSpec, ctx: Context) -> Outcome:
    """Without a memory limit one container can exhaust the host and trigger the OOM killer on
    others."""
    if spec.memory <= 0:
        return Fail("no memory limit")
    return Pass(evidence={"memory": spec.memory})


@rules.rule(
    "DW-C013",
    "CPU limit or weight set",
    severity=LOW,
    kind="container",
    fields=("nano_cpus", "cpu_shares", "cpu_quota"),
    aliases=("no-cpu-limit",),
    cis="5.12",
    remediation="Set `--cpus 1.5` or `--cpu-shares 512` (compose: `cpus`, `cpu_shares`).",
    examples=lambda: _ex(cpu_shares=0),
)
def cpu_limited(spec: ContainerSpec, ctx: Context) -> Outcome:
    """Without a CPU limit or weight, one container can starve the others."""
    if (
        spec.nano_cpus > 0
        or spec.cpu_quota > 0
        or spec.cpu_shares not in (0, 1024)
        or spec.cpuset_cpus
    ):
        return Pass()
    return Fail("no CPU limit or weight")


@rules.rule(
    "DW-C014",
    "Root filesystem read-only",
    severity=LOW,
    kind="container",
    fields=("read_only_rootfs",),
    aliases=("writable-rootfs",),
    cis="5.13",
    remediation="Add `--read-only` (compose: `read_only: true`) and `--tmpfs` / volumes for the "
    "paths the workload writes.",
    examples=lambda: _ex(read_only_rootfs=False),
)
def read_only_rootfs(spec: ContainerSpec, ctx: Context) -> Outcome:
    """A read-only root filesystem stops an intruder from dropping tools or changing binaries."""
    return Pass() if spec.read_only_rootfs else Fail("root filesystem is writable")


@rules.rule(
    "DW-C015",
    "Ports bound to a specific host interface",
    severity=MED,
    kind="container",
    fields=("ports", "publish_all"),
    aliases=("ports-all-interfaces",),
    cis="5.14",
    remediation="Publish on one address: `-p 127.0.0.1:8080:80` (compose: "
    '`ports: ["127.0.0.1:8080:80"]`).',
    examples=lambda: _ex(ports=(PortBinding(8080, "tcp", "", 8080),)),
)
def ports_bound_to_interface(spec: ContainerSpec, ctx: Context) -> Outcome:
    """A port published on 0.0.0.0 is reachable from every network the host is on, and Docker's
    iptables rules bypass a host firewall such as ufw."""
    if spec.network_mode == "host":
        return Skip("host network: ports are not published")
    wide = [
        f"{p.host_port or '*'}->{p.container_port}/{p.protocol}"
        for p in spec.ports
        if p.all_interfaces
    ]
    if spec.publish_all:
        wide.append("-P (all exposed ports)")
    if wide:
        return Fail(f"published on all interfaces: {', '.join(wide)}", {"ports": wide})
    return Pass()


@rules.rule(
    "DW-C016",
    "Restart policy bounded",
    severity=LOW,
    kind="container",
    fields=("restart",),
    aliases=("unbounded-restart",),
    groups=("update-body",),
    cis="5.15",
    remediation="Use `--restart on-failure:5` (compose: `restart: on-failure:5`).",
    examples=lambda: _ex(restart=RestartPolicy("on-failure", 0)),
)
def restart_bounded(spec: ContainerSpec, ctx: Context) -> Outcome:
    """An unbounded restart loop hides a crash and can be used to exhaust the host. docker-bench
    checked only the retry count, never the policy name."""
    name, retries = spec.restart.name, spec.restart.max_retries
    if name == "on-failure" and not 0 < retries <= 5:
        return Fail(f"on-failure with {retries or 'unlimited'} retries", {"restart": name})
    if name in ("always", "unless-stopped"):
        return Fail(f"restart policy {name} restarts without bound", {"restart": name})
    return Pass(evidence={"restart": f"{name or 'no'}:{retries}"})


@rules.rule(
    "DW-C017",
    "Host PID namespace not shared",
    severity=HIGH,
    kind="container",
    fields=("pid_mode",),
    aliases=("host-pid",),
    groups=("host-namespace", "default-deny"),
    cis="5.16",
    remediation="Remove `--pid host` (compose: `pid: host`).",
    examples=lambda: _ex(pid_mode="host"),
)
def no_host_pid(spec: ContainerSpec, ctx: Context) -> Outcome:
    """With the host PID namespace the container sees, and with capabilities can signal or trace,
    every process on the host."""
    return Fail("container shares the host PID namespace") if _host_ns(spec.pid_mode) else Pass()


@rules.rule(
    "DW-C018",
    "Host IPC namespace not shared",
    severity=HIGH,
    kind="container",
    fields=("ipc_mode",),
    aliases=("host-ipc",),
    groups=("host-namespace", "default-deny"),
    cis="5.17",
    remediation="Remove `--ipc host` (compose: `ipc: host`).",
    examples=lambda: _ex(ipc_mode="host"),
)
def no_host_ipc(spec: ContainerSpec, ctx: Context) -> Outcome:
    """The host IPC namespace exposes the host's shared memory and semaphores."""
    return Fail("container shares the host IPC namespace") if _host_ns(spec.ipc_mode) else Pass()


RAW_DEVICE = re.compile(
    r"^/dev/(mem|kmem|port|sd[a-z]+\d*|nvme\d+.*|vd[a-z]+\d*|xvd[a-z]+\d*|dm-\d+|loop\d*|mapper/.*|kvm|fuse)$"
)


@rules.rule(
    "DW-C019",
    "No host devices exposed",
    severity=MED,
    kind="container",
    fields=("devices", "device_cgroup_rules"),
    aliases=("devices",),
    groups=("sensitive-mount", "default-deny", "update-body"),
    cis="5.18",
    remediation="Remove `--device` and permissive `--device-cgroup-rule` entries; if a device is "
    "needed, expose it read-only (`--device /dev/x:/dev/x:r`).",
    examples=lambda: _ex(devices=(Device("/dev/sda", "/dev/sda", "rwm"),)),
)
def no_host_devices(spec: ContainerSpec, ctx: Context) -> Outcome:
    """A host device inside a container bypasses the filesystem: a disk device gives every file,
    /dev/mem the kernel's memory. A device cgroup rule fails by what it grants: any access to all
    devices, write or mknod on block devices, wildcard majors, and the memory, kernel-message and
    raw-I/O character devices (c 1:1, 1:2, 1:4, 1:11, 162:*, 202:*, 10:231; the table is in
    dockward.rules.devices)."""
    devs = [f"{d.host_path}:{d.container_path}:{d.permissions}" for d in spec.devices]
    grants = {r: why for r in spec.device_cgroup_rules if (why := excessive_grant(r))}
    rules_ = list(grants)
    if devs or rules_:
        raw = [d.host_path for d in spec.devices if RAW_DEVICE.match(d.host_path)]
        parts = devs + [f"{r} ({why})" for r, why in grants.items()]
        msg = f"host devices: {', '.join(parts)}"
        if raw:
            msg += f" (raw disk or memory: {', '.join(raw)})"
        return Fail(msg, {"devices": devs, "cgroup_rules": rules_})
    if spec.device_cgroup_rules:
        return Pass(evidence={"cgroup_rules": list(spec.device_cgroup_rules)})
    return Pass()


@rules.rule(
    "DW-C020",
    "No unlimited ulimits",
    severity=LOW,
    kind="container",
    fields=("ulimits",),
    aliases=("unlimited-ulimits",),
    groups=("update-body",),
    cis="5.19",
    remediation="Drop `--ulimit NAME=-1`; set finite limits, or inherit the daemon's default.",
    examples=lambda: _ex(ulimits=(Ulimit("nproc", -1, -1),)),
)
def ulimits_bounded(spec: ContainerSpec, ctx: Context) -> Outcome:
    """Overriding ulimits to unlimited removes a guard against fork bombs and descriptor
    exhaustion."""
    unlimited = [u.name for u in spec.ulimits if u.soft < 0 or u.hard < 0]
    if unlimited:
        return Fail(f"unlimited ulimits: {', '.join(unlimited)}")
    if spec.ulimits:
        return Pass(evidence={u.name: f"{u.soft}:{u.hard}" for u in spec.ulimits})
    return Pass()


@rules.rule(
    "DW-C021",
    "Mount propagation not shared",
    severity=MED,
    kind="container",
    fields=("mounts",),
    aliases=("shared-propagation",),
    groups=("default-deny",),
    cis="5.20",
    remediation="Remove `shared`/`rshared` propagation from the mount (use the default rprivate).",
    examples=lambda: _ex(mounts=(Mount("bind", "/srv/data", "/data", False, "rshared"),)),
)
def no_shared_propagation(spec: ContainerSpec, ctx: Context) -> Outcome:
    """With shared propagation, mounts made inside the container appear on the host."""
    shared = [m.target for m in spec.mounts if m.propagation in ("shared", "rshared")]
    if shared:
        return Fail(f"shared mount propagation on {', '.join(shared)}")
    return Pass()


@rules.rule(
    "DW-C022",
    "Host UTS namespace not shared",
    severity=MED,
    kind="container",
    fields=("uts_mode",),
    aliases=("host-uts",),
    groups=("host-namespace", "default-deny"),
    cis="5.21",
    remediation="Remove `--uts host` (compose: `uts: host`).",
    examples=lambda: _ex(uts_mode="host"),
)
def no_host_uts(spec: ContainerSpec, ctx: Context) -> Outcome:
    """With the host UTS namespace the container can change the host's hostname."""
    return Fail("container shares the host UTS namespace") if _host_ns(spec.uts_mode) else Pass()


@rules.rule(
    "DW-C023",
    "Seccomp not disabled",
    severity=HIGH,
    kind="container",
    fields=("security", "privileged"),
    aliases=("seccomp-unconfined",),
    groups=("default-deny",),
    cis="5.22",
    remediation="Remove `--security-opt seccomp=unconfined`; use the default profile or one from "
    "`dockward profile seccomp learn`.",
    examples=lambda: _ex(security=SecurityOptions(seccomp="unconfined", no_new_privileges=True)),
)
def seccomp_enabled(spec: ContainerSpec, ctx: Context) -> Outcome:
    """The default seccomp profile blocks about 50 syscalls used in kernel exploits."""
    if spec.security.seccomp == "unconfined":
        return Fail("seccomp is disabled (seccomp=unconfined)")
    if spec.privileged:
        return Fail("privileged containers run without seccomp")
    if ctx.daemon is not None and ctx.daemon.info and ctx.daemon.security_option("seccomp") is None:
        return Fail("the daemon has no seccomp support")
    return Pass(evidence={"profile": spec.security.seccomp or "default"})


@rules.rule(
    "DW-C024",
    "Default cgroup parent used",
    severity=LOW,
    kind="container",
    fields=("cgroup_parent",),
    aliases=("cgroup-parent",),
    groups=("default-deny", "update-body"),
    cis="5.25",
    remediation="Remove `--cgroup-parent` unless the cgroup is managed on purpose.",
    examples=lambda: _ex(cgroup_parent="/custom"),
)
def default_cgroup_parent(spec: ContainerSpec, ctx: Context) -> Outcome:
    """A custom cgroup parent can escape the limits the host sets for containers."""
    if spec.cgroup_parent:
        return Fail(f"cgroup parent set to {spec.cgroup_parent}")
    return Pass()


@rules.rule(
    "DW-C025",
    "no-new-privileges set",
    severity=MED,
    kind="container",
    fields=("security",),
    aliases=("no-new-privileges-unset",),
    cis="5.26",
    remediation="Add `--security-opt no-new-privileges` (compose: `security_opt: "
    '[no-new-privileges:true]`) or set `"no-new-privileges": true` in daemon.json.',
    examples=lambda: _ex(security=SecurityOptions()),
)
def no_new_privileges(spec: ContainerSpec, ctx: Context) -> Outcome:
    """Without no-new-privileges, setuid binaries in the image can raise privileges."""
    if spec.security.no_new_privileges:
        return Pass(evidence={"source": "container"})
    if (
        spec.security.no_new_privileges is None
        and ctx.daemon is not None
        and ctx.daemon.flag("no-new-privileges")
    ):
        return Pass(evidence={"source": "daemon default"})
    return Fail("no-new-privileges is not set")


@rules.rule(
    "DW-C026",
    "Health checked",
    severity=LOW,
    kind="container",
    fields=("healthcheck",),
    aliases=("no-healthcheck",),
    cis="5.27",
    remediation="Add a HEALTHCHECK to the image or `--health-cmd` (compose: `healthcheck:`).",
    examples=lambda: _ex(healthcheck=Healthcheck(("NONE",)), health_status=None),
)
def health_checked(spec: ContainerSpec, ctx: Context) -> Outcome:
    """Without a health check nothing notices a hung service, and updates cannot be gated."""
    if spec.healthcheck is None or spec.healthcheck.disabled:
        if spec.origin != "inspect" and spec.healthcheck is None:
            return Info("no healthcheck here; the image's HEALTHCHECK applies if it has one")
        return Fail("no health check")
    if spec.health_status == "unhealthy":
        return Fail("container is unhealthy", {"health": "unhealthy"})
    return Pass(evidence={"health": spec.health_status or "defined"})


@rules.rule(
    "DW-C027",
    "PIDs limit set",
    severity=MED,
    kind="container",
    fields=("pids_limit",),
    aliases=("no-pids-limit",),
    cis="5.29",
    remediation="Set `--pids-limit 200` (compose: `pids_limit: 200`).",
    examples=lambda: _ex(pids_limit=None),
)
def pids_limited(spec: ContainerSpec, ctx: Context) -> Outcome:
    """A fork bomb in a container without a PIDs limit takes the host down."""
    if spec.pids_limit is None or spec.pids_limit <= 0:
        return Fail("no PIDs limit")
    return Pass(evidence={"pids_limit": spec.pids_limit})


@rules.rule(
    "DW-C028",
    "Host user namespace not shared",
    severity=MED,
    kind="container",
    fields=("userns_mode",),
    aliases=("host-userns",),
    groups=("host-namespace", "default-deny"),
    cis="5.31",
    remediation="Remove `--userns host` (compose: `userns_mode: host`).",
    examples=lambda: _ex(userns_mode="host"),
)
def no_host_userns(spec: ContainerSpec, ctx: Context) -> Outcome:
    """`--userns host` opts a container out of the daemon's user-namespace remapping."""
    return (
        Fail("container opts out of user-namespace remapping")
        if _host_ns(spec.userns_mode)
        else Pass()
    )


@rules.rule(
    "DW-C029",
    "Default bridge not used",
    severity=LOW,
    kind="container",
    fields=("network_mode",),
    aliases=("default-bridge",),
    cis="5.30",
    scored=False,
    remediation="Attach the container to a user-defined network (`docker network create`, "
    "compose networks) instead of docker0.",
    examples=lambda: _ex(network_mode="default"),
)
def not_default_bridge(spec: ContainerSpec, ctx: Context) -> Outcome:
    """On the default bridge, every container can talk to every other (unless icc=false)."""
    if spec.network_mode in ("default", "bridge"):
        return Fail("container is on the default bridge network")
    return Pass()


@rules.rule(
    "DW-C030",
    "No secrets in environment variables",
    severity=HIGH,
    kind="container",
    fields=("env",),
    aliases=("secret-env",),
    cis="4.10",
    remediation="Pass secrets as files (Docker/compose secrets, a mounted file) and point the "
    "application at them (`*_FILE` variables), not as environment values.",
    examples=lambda: _ex(env=("DB_PASSWORD=hunter2hunter2",)),
)
def no_env_secrets(spec: ContainerSpec, ctx: Context) -> Outcome:
    """Environment variables are visible in `docker inspect`, to every process in the container
    and in crash dumps. Detected by name (PASSWORD, TOKEN, ...) and by value shape (AWS keys,
    private keys, JWTs, ...). Values are never shown."""
    hits = secret_env_findings(spec.env)
    if hits:
        return Fail(f"secrets in environment: {', '.join(hits)}", {"variables": hits})
    return Pass()


ROOT_USERS = re.compile(r"^(|0|root)(:(0|root|\d+|\w+))?$")


@rules.rule(
    "DW-C031",
    "Runs as a non-root user",
    severity=MED,
    kind="container",
    fields=("user",),
    aliases=("root-user",),
    cis="4.1",
    remediation='Set `--user 1000:1000` (compose: `user: "1000:1000"`) or `USER` in the image.',
    examples=lambda: _ex(user="0:0"),
)
def non_root_user(spec: ContainerSpec, ctx: Context) -> Outcome:
    """Root in a container is root on the host's kernel; a non-root user makes every escape
    harder. `0:0`, `root:root` and `0:<gid>` are root too."""
    user = spec.user.strip()
    if ROOT_USERS.match(user):
        if not user and spec.origin not in ("inspect",):
            return Fail("no user set: runs as root unless the image sets USER")
        return Fail(f"runs as root (user {user or 'unset'})", {"user": user})
    return Pass(evidence={"user": user})


@rules.rule(
    "DW-C032",
    "Image pinned to a version",
    severity=LOW,
    kind="container",
    fields=("image",),
    aliases=("unpinned-image",),
    references=("hadolint DL3007", "dockle DKL-DI-0006"),
    remediation="Use a version tag or a digest (`image: app:1.4.2@sha256:...`), not `latest`.",
    examples=lambda: _ex(image="nginx:latest"),
)
def image_pinned(spec: ContainerSpec, ctx: Context) -> Outcome:
    """`latest` (or no tag) changes under you: what runs is not what was reviewed."""
    ref = spec.image
    if not ref or ref.startswith("sha256:") or "@sha256:" in ref:
        return Pass()
    name = ref.rsplit("/", 1)[-1]
    tag = name.partition(":")[2]
    if not tag or tag == "latest":
        return Fail(f"image {ref} is not pinned to a version", {"image": ref})
    return Pass()


@rules.rule(
    "DW-C033",
    "Host cgroup namespace not shared",
    severity=LOW,
    kind="container",
    fields=("cgroupns_mode",),
    aliases=("host-cgroupns",),
    groups=("host-namespace", "default-deny"),
    remediation="Use `--cgroupns private` (compose: `cgroup: private`); on cgroup v1 hosts host "
    "is the engine's default.",
    examples=lambda: _ex(cgroupns_mode="host"),
)
def no_host_cgroupns(spec: ContainerSpec, ctx: Context) -> Outcome:
    """The host cgroup namespace shows the host's cgroup tree (and with cgroup v1 may allow
    release_agent escapes together with SYS_ADMIN)."""
    return (
        Fail("container shares the host cgroup namespace")
        if spec.cgroupns_mode == "host"
        else Pass()
    )


@rules.rule(
    "DW-C034",
    "No host-level sysctls",
    severity=MED,
    kind="container",
    fields=("sysctls",),
    aliases=("host-sysctls",),
    groups=("default-deny",),
    remediation="Remove `--sysctl` keys outside the container's namespaces (kernel.*, vm.*, "
    "fs.*); namespaced `net.*` keys are fine without the host network.",
    examples=lambda: _ex(sysctls={"kernel.core_pattern": "|/tmp/x"}),
)
def no_host_sysctls(spec: ContainerSpec, ctx: Context) -> Outcome:
    """Non-namespaced sysctls change the host kernel for everyone (kernel.core_pattern is a
    known escape)."""
    namespaced = (
        "net.",
        "kernel.shm",
        "kernel.msg",
        "kernel.sem",
        "fs.mqueue.",
        "kernel.domainname",
        "kernel.hostname",
    )
    bad = [k for k in spec.sysctls if not k.startswith(namespaced)]
    if spec.network_mode == "host":
        bad += [k for k in spec.sysctls if k.startswith("net.")]
    if bad:
        return Fail(f"host-level sysctls: {', '.join(sorted(bad))}")
    return Pass()


def _execs_of(spec: ContainerSpec) -> tuple[ExecSession, ...] | Skip:
    if spec.execs is None:
        return Skip("exec sessions not known here (only the engine holds them)")
    return spec.execs


def _exec_line(e: ExecSession) -> str:
    user = f" --user {e.user}" if e.user else ""
    return f"{e.id[:12]}{user}: {' '.join(e.command)[:120]}"


@rules.rule(
    "DW-C035",
    "No exec sessions with --privileged",
    severity=HIGH,
    kind="container",
    fields=("execs",),
    aliases=("privileged-exec",),
    cis="5.23",
    remediation="Do not use `docker exec --privileged`; exec with the container's own "
    "capabilities, or add the one capability needed to the container itself. Restrict exec "
    "through the proxy (`exec.create` route, admission rules).",
    examples=lambda: _ex(execs=(ExecSession("e1" * 32, ("sh",), privileged=True),)),
)
def no_privileged_exec(spec: ContainerSpec, ctx: Context) -> Outcome:
    """A privileged exec gets every capability and every device, whatever the container was
    started with. The daemon keeps an exec's record while it runs and for a few minutes after it
    ends: a pass here covers that window (the monitor sees every exec as it happens)."""
    execs = _execs_of(spec)
    if isinstance(execs, Skip):
        return execs
    bad = [_exec_line(e) for e in execs if e.privileged]
    if bad:
        return Fail(f"privileged exec: {'; '.join(bad)}", {"execs": bad})
    return Pass()


@rules.rule(
    "DW-C036",
    "No exec sessions as root",
    severity=LOW,
    kind="container",
    fields=("execs",),
    aliases=("root-exec",),
    cis="5.24",
    remediation="Exec as the container's own non-root user (leave out `--user root`/`-u 0`).",
    examples=lambda: _ex(execs=(ExecSession("e2" * 32, ("sh",), user="0"),)),
)
def no_root_exec(spec: ContainerSpec, ctx: Context) -> Outcome:
    """`docker exec --user root` into a container that runs as a user undoes that user."""
    execs = _execs_of(spec)
    if isinstance(execs, Skip):
        return execs
    bad = [_exec_line(e) for e in execs if e.as_root]
    if bad:
        return Fail(f"exec as root: {'; '.join(bad)}", {"execs": bad})
    return Pass()


@rules.rule(
    "DW-C037",
    "No volumes_from",
    severity=LOW,
    kind="container",
    fields=("volumes_from",),
    aliases=("volumes-from",),
    groups=("default-deny",),
    references=("formerly DW-K002 (compose only)",),
    remediation="Declare the volumes the container needs instead of inheriting every mount of "
    "another container (`--volumes-from`, compose `volumes_from`, HostConfig.VolumesFrom).",
    examples=lambda: _ex(volumes_from=("other",)),
)
def no_volumes_from(spec: ContainerSpec, ctx: Context) -> Outcome:
    """Inheriting the mounts of another container takes all of them, including an engine
    socket or host directories added there later, and none of them is visible here."""
    if spec.volumes_from:
        return Fail(
            f"inherits the mounts of {', '.join(spec.volumes_from)}",
            {"volumes_from": list(spec.volumes_from)},
        )
    return Pass()


@rules.rule(
    "DW-C038",
    "OOM killer not disabled",
    severity=MED,
    kind="container",
    fields=("oom_kill_disable", "oom_score_adj"),
    aliases=("oom-kill-disabled",),
    references=("formerly DW-K003 (compose only)",),
    remediation="Remove `--oom-kill-disable`/`oom_kill_disable: true` and an OOM score "
    "adjustment of -1000; set a memory limit instead.",
    examples=lambda: _ex(oom_kill_disable=True),
)
def oom_killer_kept(spec: ContainerSpec, ctx: Context) -> Outcome:
    """With the OOM killer disabled (or the score at -1000, which is the same), a container that
    runs out of memory hangs instead of being killed, and the kernel kills host processes
    instead: without a memory limit it can take the host down."""
    if spec.oom_kill_disable:
        return Fail("the OOM killer is disabled", {"memory": spec.memory})
    if spec.oom_score_adj <= -1000:
        return Fail(f"OOM score adjusted to {spec.oom_score_adj}: never killed")
    return Pass()


_PROTECTED_NAMES = (
    "docker.io",
    "registry-1.docker.io",
    "auth.docker.io",
    "ghcr.io",
    "quay.io",
    "gcr.io",
    "pypi.org",
    "files.pythonhosted.org",
    "registry.npmjs.org",
    "deb.debian.org",
    "security.debian.org",
    "archive.ubuntu.com",
    "dl-cdn.alpinelinux.org",
    "metadata.google.internal",
    "metadata",
)
_METADATA_ADDRESS = "169.254.169.254"


def _redirect(line: str) -> str | None:
    name, _, addr = line.partition(":")
    host = name.strip().lower()
    target = addr.strip().strip("[]")
    metadata = False
    with contextlib.suppress(ValueError):
        metadata = ipaddress.ip_address(target) == ipaddress.ip_address(_METADATA_ADDRESS)
    protected = host in _PROTECTED_NAMES or host.endswith(tuple("." + n for n in _PROTECTED_NAMES))
    return f"{name.strip()}->{target}" if protected or metadata else None


@rules.rule(
    "DW-C039",
    "No extra hosts redirecting registries or cloud metadata",
    severity=MED,
    kind="container",
    fields=("extra_hosts",),
    aliases=("host-redirects",),
    references=("formerly DW-K004 (compose only)",),
    remediation="Remove `--add-host`/`extra_hosts` entries for registries, package mirrors and "
    "metadata endpoints; configure mirrors explicitly.",
    examples=lambda: _ex(extra_hosts=("registry-1.docker.io:10.0.0.5",)),
)
def no_host_redirects(spec: ContainerSpec, ctx: Context) -> Outcome:
    """Pinning a registry, a package index or the metadata service to another address in
    /etc/hosts redirects downloads or credentials."""
    bad = [r for r in map(_redirect, spec.extra_hosts) if r]
    if bad:
        return Fail(f"extra hosts redirect {', '.join(bad)}", {"extra_hosts": bad})
    return Pass()


@rules.rule(
    "DW-C040",
    "No device requests (GPUs)",
    severity=MED,
    kind="container",
    fields=("device_requests",),
    aliases=("gpus",),
    groups=("default-deny", "update-body"),
    remediation="Remove `--gpus`/`gpus:`/device reservations, or allow the workload "
    "explicitly (a dedicated host, a policy that leaves this rule out of `deny`).",
    examples=lambda: _ex(device_requests=("driver=,count=all,capabilities=gpu",)),
)
def no_device_requests(spec: ContainerSpec, ctx: Context) -> Outcome:
    """A device request makes the runtime hook inject host devices and the driver's host
    libraries and binaries into the container (the NVIDIA container toolkit runs as root on
    the host for it): device access that no device list shows."""
    if spec.device_requests:
        return Fail(
            f"device requests: {'; '.join(spec.device_requests)}",
            {"device_requests": list(spec.device_requests)},
        )
    return Pass()


# runc under its names, and runtimes that add isolation (gVisor, Kata, crun, youki).
KNOWN_RUNTIMES = frozenset(
    {
        "",
        "runc",
        "io.containerd.runc.v1",
        "io.containerd.runc.v2",
        "io.containerd.runtime.v1.linux",
        "crun",
        "youki",
        "runsc",
        "io.containerd.runsc.v1",
        "kata",
        "kata-runtime",
        "io.containerd.kata.v2",
    }
)


@rules.rule(
    "DW-C041",
    "Known OCI runtime",
    severity=MED,
    kind="container",
    fields=("runtime",),
    aliases=("unknown-runtime",),
    groups=("default-deny",),
    remediation="Run with the daemon's default runtime (runc) or a known sandbox (runsc, kata); "
    "remove `--runtime`/`runtime:` otherwise.",
    examples=lambda: _ex(runtime="custom-runtime"),
)
def known_runtime(spec: ContainerSpec, ctx: Context) -> Outcome:
    """A runtime registered with the daemon decides how the container is isolated; one this
    rule does not know may apply none of the settings the other rules judge."""
    if spec.runtime not in KNOWN_RUNTIMES:
        return Fail(f"runtime {spec.runtime!r}", {"runtime": spec.runtime})
    return Pass(spec.runtime or "default runtime")


@rules.rule(
    "DW-C042",
    "/proc and /sys stay masked",
    severity=HIGH,
    kind="container",
    fields=("unmasked_paths",),
    aliases=("unmasked-paths",),
    groups=("default-deny",),
    remediation="Remove `--security-opt systempaths=unconfined` (or the empty MaskedPaths and "
    "ReadonlyPaths of an API request).",
    examples=lambda: _ex(unmasked_paths=True),
)
def system_paths_masked(spec: ContainerSpec, ctx: Context) -> Outcome:
    """The runtime masks parts of /proc (kcore, keys, timer_list, ...) and makes /proc/sys,
    /proc/sysrq-trigger and friends read-only; unmasked, a container reads kernel memory
    layout and writes kernel settings that are not namespaced."""
    if spec.unmasked_paths:
        return Fail("/proc and /sys are not masked (systempaths=unconfined)")
    return Pass()


def _fixed_address_examples() -> tuple[ContainerSpec, ContainerSpec]:
    base = hardened_example()
    inside = StaticAddress("internal", "172.30.99.2", "172.30.99.0/24")
    outside = StaticAddress("internal", "172.30.99.2", "172.30.99.128/25")
    return base.with_changes(static_addresses=(inside,)), base.with_changes(
        static_addresses=(outside,)
    )


@rules.rule(
    "DW-C043",
    "Fixed address outside the range the engine hands out",
    severity=MED,
    kind="container",
    fields=("static_addresses",),
    aliases=("fixed-address-in-dynamic-range",),
    references=("https://github.com/moby/moby/issues/26284",),
    remediation="Give the network an `ip_range` that leaves the fixed addresses out (compose: "
    "`ipam: {config: [{subnet: 172.30.99.0/24, ip_range: 172.30.99.128/25}]}`, `docker network "
    "create --subnet 172.30.99.0/24 --ip-range 172.30.99.128/25`), or drop the fixed address.",
    examples=_fixed_address_examples,
)
def fixed_address_outside_dynamic_range(spec: ContainerSpec, ctx: Context) -> Outcome:
    """The engine hands a container without a fixed address the next free one of its network's
    `ip_range`, or of the whole subnet when the network has none. A fixed address in that range
    is free while its container is down: after a crash or a reboot, a container that starts
    first may get it, and the owner's start fails with "Address already in use". A restart
    policy does not retry that: the service stays down until someone starts it by hand
    (moby#26284, docker/compose#9161). Typical victim: the one service the others reach by a
    fixed address (a proxy, a DNS server), which takes its dependants down with it. dockward's
    own deployment failed this way when all its services were killed at once."""
    unknown = []
    for a in spec.static_addresses:
        if a.handed_out is None:
            unknown.append(a.network)
        elif a.handed_out and in_range(a.address, a.handed_out):
            return Fail(
                f"{a.address} on network {a.network} lies in {a.handed_out}, which the engine "
                "hands out to other containers: after a restart one may take it first",
                {"network": a.network, "address": a.address, "handed_out": a.handed_out},
            )
    if unknown:
        return Skip(f"the address ranges of network {', '.join(unknown)} are not known here")
    if spec.static_addresses:
        return Pass(evidence={"addresses": " ".join(a.address for a in spec.static_addresses)})
    return Pass("no fixed address")


__all__ = ["DANGEROUS_CAPABILITIES", "engine_socket_mount", "hardened_example", "rules"]
