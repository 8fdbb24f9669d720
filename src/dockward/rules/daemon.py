"""Daemon rules over the effective DaemonSpec (CIS section 2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dockward.model.daemon import DaemonSpec, Setting
from dockward.model.finding import Severity, Status
from dockward.model.host import HostSnapshot, NetworkInfo
from dockward.rules.fixes import DaemonFixer, SetWhenFailing
from dockward.rules.registry import Fail, Info, Outcome, Pass, RuleSet, Skip

rules = RuleSet("daemon")
HIGH, MED, LOW, INFO = Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO
DEFAULT_NOFILE = (65536, 65536)
ROTATION = {"max-size": "10m", "max-file": "3"}


def example_snapshot(
    settings: Mapping[str, object] | None = None,
    info: Mapping[str, object] | None = None,
    **changes: Any,
) -> HostSnapshot:
    """A hardened host for the examples; `settings`/`info` override single keys."""
    base_settings: dict[str, object] = {
        "icc": False,
        "log-level": "info",
        "userns-remap": "default",
        "no-new-privileges": True,
        "live-restore": True,
        "userland-proxy": False,
        "authorization-plugins": ["dockward-authz"],
        "log-driver": "syslog",
        "ip": "127.0.0.1",
    }
    base_settings.update(settings or {})
    base_info: dict[str, object] = {
        "Driver": "overlay2",
        "LoggingDriver": "syslog",
        "LiveRestoreEnabled": True,
        "ExperimentalBuild": False,
        "SecurityOptions": [
            "name=seccomp,profile=builtin",
            "name=userns",
            "name=no-new-privileges",
        ],
        "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}},
        "Plugins": {"Authorization": ["dockward-authz"]},
        "Swarm": {"LocalNodeState": "inactive"},
        "DockerRootDir": "/var/lib/docker",
    }
    base_info.update(info or {})
    daemon = DaemonSpec(
        settings={k: Setting(v, "daemon.json") for k, v in base_settings.items() if v is not None},
        info=base_info,
        version={"Version": "28.5.0", "ApiVersion": "1.51"},
        argv=("dockerd",),
    )
    snap = HostSnapshot(
        host="unix:///var/run/docker.sock",
        local=True,
        daemon=daemon,
        networks=(
            NetworkInfo(
                "bridge", "b" * 12, "bridge", {"com.docker.network.bridge.enable_icc": "false"}
            ),
        ),
    )
    return replace(snap, **changes)


def _ex(
    settings: dict[str, object] | None = None,
    info: dict[str, object] | None = None,
    **changes: Any,
) -> tuple[HostSnapshot, HostSnapshot]:
    return example_snapshot(settings, info, **changes), example_snapshot()


def _src(d: DaemonSpec, key: str) -> dict[str, str]:
    s = d.get(key)
    return {key: s.describe(key)} if s else {key: "not set (default)"}


@rules.rule(
    "DW-D001",
    "Daemon runs rootless where possible",
    severity=INFO,
    kind="daemon",
    cis="2.1",
    scored=False,
    remediation="Consider rootless mode (`dockerd-rootless-setuptool.sh install`) for workloads "
    "that do not need root.",
    examples=lambda: (
        example_snapshot(),
        example_snapshot(
            info={"SecurityOptions": ["name=seccomp,profile=builtin", "name=rootless"]}
        ),
    ),
)
def rootless(snap: HostSnapshot) -> Outcome:
    """Rootless mode runs the daemon and containers without root on the host."""
    if snap.daemon.security_option("rootless") is not None:
        return Pass("daemon runs rootless")
    return Info("daemon runs as root")


def _fix_icc(fix: DaemonFixer) -> None:
    # The rule reads the running bridge; the file decides what the next start does.
    if fix.status is Status.FAIL or fix.snap.daemon.flag("icc", True):
        fix.set("icc", False, "containers on the default bridge stop talking")


@rules.rule(
    "DW-D002",
    "Inter-container traffic on the default bridge is off",
    severity=MED,
    kind="daemon",
    cis="2.2",
    remediation='Set `"icc": false` in daemon.json (or `--icc=false`) and use user-defined '
    "networks for containers that talk.",
    fix=_fix_icc,
    examples=lambda: _ex(
        {"icc": None},
        networks=(
            NetworkInfo(
                "bridge", "b" * 12, "bridge", {"com.docker.network.bridge.enable_icc": "true"}
            ),
        ),
    ),
)
def icc_off(snap: HostSnapshot) -> Outcome:
    """With icc on, every container on docker0 can reach every other one. The effective value
    is read from the bridge network, not only from the configuration."""
    bridge = next((n for n in snap.networks if n.name == "bridge"), None)
    if bridge is not None and "com.docker.network.bridge.enable_icc" in bridge.options:
        on = bridge.options["com.docker.network.bridge.enable_icc"] == "true"
        ev = {
            "bridge option": f"enable_icc={bridge.options['com.docker.network.bridge.enable_icc']}"
        }
        ev.update(_src(snap.daemon, "icc"))
        return Fail("icc is enabled on the default bridge", ev) if on else Pass(evidence=ev)
    if snap.daemon.flag("icc", True):
        return Fail("icc is enabled (default)", _src(snap.daemon, "icc"))
    return Pass(evidence=_src(snap.daemon, "icc"))


@rules.rule(
    "DW-D003",
    "Log level is info",
    severity=LOW,
    kind="daemon",
    cis="2.3",
    remediation='Set `"log-level": "info"` in daemon.json (or remove `--log-level`).',
    fix=SetWhenFailing("log-level", "info", "info logs enough to audit, debug logs requests"),
    examples=lambda: _ex({"log-level": "debug"}),
)
def log_level(snap: HostSnapshot) -> Outcome:
    """`debug` logs too much (including request details), `warn`/`error` too little for audits.
    Both argv and daemon.json are read (docker-bench never read argv)."""
    level = str(snap.daemon.value("log-level", "info")).lower()
    if level != "info":
        return Fail(f"log level is {level}", _src(snap.daemon, "log-level"))
    return Pass(evidence=_src(snap.daemon, "log-level"))


@rules.rule(
    "DW-D004",
    "Docker manages iptables",
    severity=MED,
    kind="daemon",
    groups=("manual-fix",),
    cis="2.4",
    remediation='Remove `"iptables": false` from daemon.json (or `--iptables=false`).',
    examples=lambda: _ex({"iptables": False}),
)
def iptables(snap: HostSnapshot) -> Outcome:
    """Without iptables management the daemon cannot isolate networks or publish ports safely."""
    if not snap.daemon.flag("iptables", True):
        return Fail("iptables management is off", _src(snap.daemon, "iptables"))
    return Pass(evidence=_src(snap.daemon, "iptables"))


@rules.rule(
    "DW-D005",
    "No insecure registries",
    severity=HIGH,
    kind="daemon",
    groups=("manual-fix",),
    cis="2.5",
    remediation='Remove entries from `"insecure-registries"`; give the registry a TLS certificate '
    "(/etc/docker/certs.d/HOST/ca.crt).",
    examples=lambda: _ex(
        info={
            "RegistryConfig": {
                "InsecureRegistryCIDRs": ["127.0.0.0/8", "10.0.0.0/8"],
                "IndexConfigs": {},
            }
        }
    ),
)
def insecure_registries(snap: HostSnapshot) -> Outcome:
    """A registry over plain HTTP lets anyone on the path swap images. The engine's built-in
    127.0.0.0/8 entry is not counted."""
    reg = snap.daemon.info.get("RegistryConfig") or {}
    cidrs = [c for c in reg.get("InsecureRegistryCIDRs") or [] if c != "127.0.0.0/8"]
    names = [
        n
        for n, c in (reg.get("IndexConfigs") or {}).items()
        if isinstance(c, dict) and not c.get("Secure", True)
    ]
    declared = snap.daemon.value("insecure-registries") or []
    found = sorted(set(cidrs) | set(names) | set(declared))
    if found:
        return Fail(f"insecure registries: {', '.join(found)}", {"insecure": found})
    return Pass()


@rules.rule(
    "DW-D006",
    "aufs is not the storage driver",
    severity=MED,
    kind="daemon",
    groups=("manual-fix",),
    cis="2.6",
    remediation='Use overlay2 (`"storage-driver": "overlay2"`).',
    examples=lambda: _ex(info={"Driver": "aufs"}),
)
def not_aufs(snap: HostSnapshot) -> Outcome:
    """aufs is unmaintained and has known kernel crashes."""
    driver = snap.daemon.info.get("Driver")
    if driver is None:
        return Skip("storage driver unknown")
    return Fail("storage driver is aufs") if driver == "aufs" else Pass(evidence={"driver": driver})


@rules.rule(
    "DW-D021",
    "devicemapper is not the storage driver",
    severity=MED,
    kind="daemon",
    groups=("manual-fix",),
    cis="2.7",
    remediation='Move to overlay2 (`"storage-driver": "overlay2"`): export what the containers '
    "need, switch the driver, then recreate them. Engine 25 and later no longer ship devicemapper.",
    examples=lambda: _ex(info={"Driver": "devicemapper"}),
)
def not_devicemapper(snap: HostSnapshot) -> Outcome:
    """devicemapper is deprecated and was removed in Docker Engine 25; in loop-lvm mode (its
    default without a dedicated thin pool) it is slow and can corrupt data, and it gets no more
    fixes. CIS Docker Benchmark 1.8.0 added this check as 2.7."""
    driver = snap.daemon.info.get("Driver")
    if driver is None:
        return Skip("storage driver unknown")
    if driver == "devicemapper":
        status = snap.daemon.info.get("DriverStatus") or []
        loop = any("loop" in str(v).lower() for row in status for v in row)
        return Fail(
            "storage driver is devicemapper" + (" in loop-lvm mode" if loop else ""),
            {"driver": driver},
        )
    return Pass(evidence={"driver": driver})


def _tcp_hosts(d: DaemonSpec) -> list[str]:
    hosts = d.value("hosts") or []
    if isinstance(hosts, str):
        hosts = [hosts]
    return [
        h
        for h in hosts
        if str(h).startswith(("tcp://", "http://"))
        or (":" in str(h) and not str(h).startswith(("unix://", "fd://", "npipe://", "/")))
    ]


@rules.rule(
    "DW-D007",
    "TCP listener requires TLS with client certificates",
    severity=Severity.CRITICAL,
    kind="daemon",
    groups=("manual-fix",),
    cis="2.8",
    remediation='Set `"tlsverify": true`, `"tlscacert"`, `"tlscert"`, `"tlskey"` in daemon.json, '
    "or drop the tcp:// host and use the unix socket (or `dockward proxy`).",
    examples=lambda: _ex({"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"]}),
)
def tcp_tls(snap: HostSnapshot) -> Outcome:
    """An API listener without client-certificate verification is remote root for anyone who
    reaches the port."""
    tcp = _tcp_hosts(snap.daemon)
    if not tcp:
        return Pass(
            "no TCP listener", {"hosts": repr(snap.daemon.value("hosts") or ["unix socket"])}
        )
    if not snap.daemon.flag("tlsverify", False):
        return Fail(
            f"TCP listener without client-cert verification: {', '.join(tcp)}",
            _src(snap.daemon, "tlsverify"),
        )
    missing = [k for k in ("tlscacert", "tlscert", "tlskey") if not snap.daemon.value(k)]
    if missing:
        return Fail(f"tlsverify on but {', '.join(missing)} unset")
    return Pass(evidence={"hosts": ", ".join(tcp)})


def _fix_ulimits(fix: DaemonFixer) -> None:
    if fix.status is None:
        return
    soft, hard = fix.options.nofile or DEFAULT_NOFILE
    ceiling = fix.nofile_ceiling
    if fix.options.nofile is None and ceiling:
        soft, hard = min(soft, ceiling), min(hard, ceiling)
    fix.set(
        "default-ulimits",
        {
            **(fix.current.get("default-ulimits") or {}),
            "nofile": {"Name": "nofile", "Soft": soft, "Hard": hard},
        },
        "containers get a set open-files limit instead of the daemon's own",
    )


@rules.rule(
    "DW-D008",
    "Default ulimits set on purpose",
    severity=INFO,
    kind="daemon",
    cis="2.9",
    scored=False,
    remediation='Set `"default-ulimits": {"nofile": {"Name": "nofile", "Soft": 64000, "Hard": 64000}}`.',
    fix=_fix_ulimits,
    examples=lambda: (
        example_snapshot(),
        example_snapshot(
            {"default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 4096}}}
        ),
    ),
)
def default_ulimits(snap: HostSnapshot) -> Outcome:
    """Daemon-wide ulimits keep a container from using the daemon's own (high) limits. A null
    value is not a setting (docker-bench took null for set)."""
    v = snap.daemon.value("default-ulimits")
    if v:
        return Pass(evidence=_src(snap.daemon, "default-ulimits"))
    return Info("no default ulimits configured")


def _fix_remap(fix: DaemonFixer) -> None:
    if fix.status is not Status.FAIL:
        return
    if fix.options.userns_remap and "userns-remap" not in fix.current:
        fix.set("userns-remap", fix.options.userns_remap, "container root is not host root")
    elif fix.snap.daemon.value("userns-remap"):
        fix.warn("userns-remap is configured but not in effect: restart dockerd")


@rules.rule(
    "DW-D009",
    "User-namespace remapping is on",
    severity=MED,
    kind="daemon",
    cis="2.10",
    remediation='Set `"userns-remap": "default"` in daemon.json (`dockward harden daemon` '
    "writes it), then restart dockerd.",
    fix=_fix_remap,
    examples=lambda: _ex(
        {"userns-remap": None}, info={"SecurityOptions": ["name=seccomp,profile=builtin"]}
    ),
)
def userns_remap(snap: HostSnapshot) -> Outcome:
    """With remapping, root in a container is an unprivileged user on the host."""
    effective = snap.daemon.security_option("userns") is not None
    if effective:
        return Pass(evidence=_src(snap.daemon, "userns-remap"))
    if snap.daemon.value("userns-remap"):
        return Fail(
            "userns-remap is configured but not in effect (restart dockerd)",
            _src(snap.daemon, "userns-remap"),
        )
    return Fail("user-namespace remapping is off")


@rules.rule(
    "DW-D010",
    "Default cgroup parent left alone",
    severity=LOW,
    kind="daemon",
    groups=("manual-fix",),
    cis="2.11",
    remediation='Remove `"cgroup-parent"` from daemon.json (or `--cgroup-parent`).',
    examples=lambda: _ex({"cgroup-parent": "/foo"}),
)
def daemon_cgroup_parent(snap: HostSnapshot) -> Outcome:
    """A daemon-wide cgroup parent moves every container out of the default hierarchy.
    daemon.json is read too (docker-bench's test of it could never match)."""
    v = snap.daemon.value("cgroup-parent")
    if v:
        return Fail(f"cgroup parent set to {v}", _src(snap.daemon, "cgroup-parent"))
    return Pass()


@rules.rule(
    "DW-D011",
    "devicemapper base size not changed",
    severity=LOW,
    kind="daemon",
    groups=("manual-fix",),
    cis="2.12",
    remediation="Remove `dm.basesize` from `storage-opts`.",
    examples=lambda: _ex({"storage-opts": ["dm.basesize=20G"]}),
)
def dm_basesize(snap: HostSnapshot) -> Outcome:
    """Raising the base device size lets one container fill the disk."""
    opts = snap.daemon.value("storage-opts") or []
    if any(str(o).startswith("dm.basesize") for o in opts):
        return Fail("dm.basesize is set", _src(snap.daemon, "storage-opts"))
    return Pass()


@rules.rule(
    "DW-D012",
    "An authorization plugin is configured",
    severity=LOW,
    kind="daemon",
    groups=("manual-fix",),
    cis="2.13",
    remediation='Set `"authorization-plugins": [...]`, or put `dockward proxy` in front of the '
    "socket for clients that should not have full access.",
    examples=lambda: _ex(
        {"authorization-plugins": None}, info={"Plugins": {"Authorization": None}}
    ),
)
def authz_plugin(snap: HostSnapshot) -> Outcome:
    """Without authorization, any socket client can do anything. null is not configured."""
    plugins = (snap.daemon.info.get("Plugins") or {}).get("Authorization") or snap.daemon.value(
        "authorization-plugins"
    )
    if plugins:
        return Pass(evidence={"plugins": repr(plugins)})
    return Fail("no authorization plugin")


def _fix_logging(fix: DaemonFixer) -> None:
    """A central driver when one is asked for, else rotation for the local json-file driver."""
    driver = fix.options.log_driver
    if driver:
        if fix.status is None and not fix.options.log_opts:
            return
        kept = dict(fix.current.get("log-opts") or {})
        new_opts = {**kept, **fix.options.log_opts}
        if fix.set("log-driver", driver, "logs leave the host") and new_opts != kept:
            fix.set("log-opts", new_opts, f"options of {driver}")
        return
    if fix.status is Status.FAIL:
        fix.manual()
    local = str(
        fix.snap.daemon.info.get("LoggingDriver") or fix.current.get("log-driver") or "json-file"
    )
    if local in ("json-file", "local") and "max-size" not in dict(
        fix.snap.daemon.value("log-opts") or {}
    ):
        fix.set(
            "log-opts",
            {**dict(fix.current.get("log-opts") or {}), **ROTATION},
            f"rotate {local} logs so a chatty container cannot fill the disk",
            mitigation=True,
        )


@rules.rule(
    "DW-D013",
    "Logs go to a central driver",
    severity=LOW,
    kind="daemon",
    cis="2.14",
    remediation='Set `"log-driver": "syslog"` (or journald, fluentd, gelf) with `log-opts` for '
    "your collector.",
    fix=_fix_logging,
    examples=lambda: _ex(info={"LoggingDriver": "json-file"}),
)
def central_logging(snap: HostSnapshot) -> Outcome:
    """Local json-file logs vanish with the container and fill the disk."""
    driver = snap.daemon.info.get("LoggingDriver") or snap.daemon.value("log-driver", "json-file")
    if driver in ("json-file", "local", "none"):
        return Fail(f"logging driver is {driver}", {"driver": driver})
    return Pass(evidence={"driver": driver})


@rules.rule(
    "DW-D014",
    "no-new-privileges is the daemon default",
    severity=MED,
    kind="daemon",
    cis="2.15",
    remediation='Set `"no-new-privileges": true` in daemon.json.',
    fix=SetWhenFailing("no-new-privileges", True, "setuid binaries no longer raise privileges"),
    examples=lambda: _ex({"no-new-privileges": None}),
)
def daemon_nnp(snap: HostSnapshot) -> Outcome:
    """A daemon default covers every container that forgets the option."""
    if snap.daemon.flag("no-new-privileges", False):
        return Pass(evidence=_src(snap.daemon, "no-new-privileges"))
    return Fail(
        "no-new-privileges is not the daemon default", _src(snap.daemon, "no-new-privileges")
    )


@rules.rule(
    "DW-D015",
    "live-restore is on",
    severity=LOW,
    kind="daemon",
    cis="2.16",
    remediation='Set `"live-restore": true` in daemon.json so containers survive daemon restarts.',
    # The rule skips in swarm mode, where dockerd refuses live-restore.
    fix=SetWhenFailing("live-restore", True, "containers survive daemon restarts"),
    examples=lambda: _ex(info={"LiveRestoreEnabled": False}),
)
def live_restore(snap: HostSnapshot) -> Outcome:
    """Live restore keeps containers running while the daemon restarts or is upgraded.
    Not applicable in swarm mode."""
    if (snap.daemon.info.get("Swarm") or {}).get("LocalNodeState") == "active":
        return Skip("not applicable in swarm mode")
    if snap.daemon.info.get("LiveRestoreEnabled"):
        return Pass()
    return Fail("live-restore is off", _src(snap.daemon, "live-restore"))


@rules.rule(
    "DW-D016",
    "userland-proxy is off",
    severity=LOW,
    kind="daemon",
    cis="2.17",
    remediation='Set `"userland-proxy": false` in daemon.json.',
    fix=SetWhenFailing("userland-proxy", False, "one process less per published port"),
    examples=lambda: _ex({"userland-proxy": None}),
)
def userland_proxy(snap: HostSnapshot) -> Outcome:
    """The userland proxy is one process per published port and more attack surface than the
    iptables hairpin."""
    if snap.daemon.flag("userland-proxy", True):
        return Fail("userland-proxy is on", _src(snap.daemon, "userland-proxy"))
    return Pass(evidence=_src(snap.daemon, "userland-proxy"))


def _fix_seccomp(fix: DaemonFixer) -> None:
    if fix.options.seccomp_profile:
        fix.set("seccomp-profile", fix.options.seccomp_profile, "daemon-wide profile")
    elif fix.status is Status.FAIL and fix.proposed.get("seccomp-profile") == "unconfined":
        fix.remove("seccomp-profile", "back to the built-in profile")


@rules.rule(
    "DW-D017",
    "Seccomp default profile in effect",
    severity=MED,
    kind="daemon",
    cis="2.18",
    remediation='Keep seccomp on; set `"seccomp-profile"` to a custom profile where appropriate '
    "(`dockward profile seccomp`). Never set it to `unconfined`.",
    fix=_fix_seccomp,
    examples=lambda: _ex(info={"SecurityOptions": ["name=userns"]}),
)
def daemon_seccomp(snap: HostSnapshot) -> Outcome:
    """Current engines report `profile=builtin` (docker-bench looked for `profile=default`)."""
    opt = snap.daemon.security_option("seccomp")
    if opt is None:
        return Fail("seccomp is not enabled on the daemon")
    profile = opt.get("profile", "")
    if profile == "unconfined" or snap.daemon.value("seccomp-profile") == "unconfined":
        return Fail("daemon seccomp profile is unconfined")
    return Pass(evidence={"profile": profile})


@rules.rule(
    "DW-D018",
    "Experimental features are off",
    severity=LOW,
    kind="daemon",
    groups=("manual-fix",),
    cis="2.19",
    remediation='Remove `"experimental": true` from daemon.json.',
    examples=lambda: _ex(info={"ExperimentalBuild": True}),
)
def experimental_off(snap: HostSnapshot) -> Outcome:
    """Experimental features are not meant for production. Checked on every engine version
    (docker-bench skipped it after 19.03)."""
    if snap.daemon.info.get("ExperimentalBuild") or snap.daemon.flag("experimental", False):
        return Fail("experimental features are on")
    return Pass()


@rules.rule(
    "DW-D019",
    "Daemon configuration is valid",
    severity=HIGH,
    kind="daemon",
    remediation="Fix the JSON syntax of daemon.json; dockerd refuses to start with it.",
    examples=lambda: _ex(
        daemon=DaemonSpec(config_file="/etc/docker/daemon.json", config_error="line 2: bad")
    ),
)
def config_valid(snap: HostSnapshot) -> Outcome:
    """A malformed daemon.json stops the daemon at its next restart, and every setting in it is
    unknown until fixed."""
    if snap.daemon.config_error:
        return Fail(f"{snap.daemon.config_file}: {snap.daemon.config_error}")
    return Pass(evidence={"config": snap.daemon.config_file or "none"})


def _fix_bind_ip(fix: DaemonFixer) -> None:
    ip = fix.options.ip
    if ip and (fix.snap.daemon.value("ip") or "0.0.0.0") != ip:
        fix.set("ip", ip, "`-p PORT:PORT` binds to this address by default")


@rules.rule(
    "DW-D020",
    "Published ports default to a local address",
    severity=INFO,
    kind="daemon",
    scored=False,
    remediation='Set `"ip": "127.0.0.1"` in daemon.json so `-p 8080:80` binds to loopback '
    "unless an address is given.",
    fix=_fix_bind_ip,
    examples=lambda: _ex({"ip": None}),
)
def default_bind_ip(snap: HostSnapshot) -> Outcome:
    """The daemon's default bind address for published ports is 0.0.0.0; setting `ip` makes
    forgotten `-p` flags local-only."""
    ip = snap.daemon.value("ip")
    if ip and ip not in ("0.0.0.0", "::"):
        return Pass(evidence=_src(snap.daemon, "ip"))
    return Info("published ports default to all interfaces (daemon `ip` not set)")
