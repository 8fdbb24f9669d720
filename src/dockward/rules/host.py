"""Host, file, operations and swarm checks over HostSnapshot (CIS sections 1, 3, 4.5, 6, 7)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from dockward.model.finding import Severity
from dockward.model.host import FileInfo, HostSnapshot, NetworkInfo, Unavailable
from dockward.rules.daemon import example_snapshot
from dockward.rules.registry import Fail, Info, Outcome, Pass, RuleSet, Skip

rules = RuleSet("host")
HIGH, MED, LOW, INFO = Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO

# CIS 1.1.3-1.1.18: the paths that need an audit watch; "unit:" paths come from systemd.
AUDIT_TARGETS: tuple[tuple[str, str, str], ...] = (
    ("1.1.3", "/usr/bin/dockerd", "the Docker daemon binary"),
    ("1.1.4", "/run/containerd", "the containerd runtime directory"),
    ("1.1.5", "/var/lib/docker", "the Docker data root"),
    ("1.1.6", "/etc/docker", "the Docker configuration directory"),
    ("1.1.7", "unit:docker.service", "the docker.service unit"),
    ("1.1.8", "/run/containerd/containerd.sock", "the containerd socket"),
    ("1.1.9", "unit:docker.socket", "the docker.socket unit"),
    ("1.1.10", "/etc/default/docker", "/etc/default/docker"),
    ("1.1.11", "/etc/docker/daemon.json", "daemon.json"),
    ("1.1.12", "/etc/containerd/config.toml", "containerd's configuration"),
    ("1.1.13", "/etc/sysconfig/docker", "/etc/sysconfig/docker"),
    ("1.1.14", "/usr/bin/containerd", "the containerd binary"),
    ("1.1.15", "/usr/bin/containerd-shim", "containerd-shim"),
    ("1.1.16", "/usr/bin/containerd-shim-runc-v1", "containerd-shim-runc-v1"),
    ("1.1.17", "/usr/bin/containerd-shim-runc-v2", "containerd-shim-runc-v2"),
    ("1.1.18", "/usr/bin/runc", "runc"),
)

# Binaries Debian/Ubuntu install under /usr/sbin; the audit target is wherever the file is.
BINARY_ALTERNATIVES = {"/usr/bin/dockerd": "/usr/sbin/dockerd", "/usr/bin/runc": "/usr/sbin/runc"}


def resolve_target(snap: HostSnapshot, path: str) -> str:
    if path.startswith("unit:"):
        return snap.unit_paths.get(path[5:], "")
    alt = BINARY_ALTERNATIVES.get(path)
    if alt and isinstance(snap.files.get(alt), FileInfo) and snap.files[alt].exists:  # type: ignore[union-attr]
        main = snap.files.get(path)
        if not (isinstance(main, FileInfo) and main.exists):
            return alt
    return path


_WATCH = re.compile(r"(?:^|\s)-w\s+(\S+)")
_FIELD = re.compile(r"-F\s+(?:path|dir)=(\S+)")


def watched_paths(rules_text: tuple[str, ...]) -> set[str]:
    """Paths an audit rule watches: `-w PATH` or `-F path=`/`-F dir=` (exact, not substrings)."""
    out: set[str] = set()
    for line in rules_text:
        line = line.split("#", 1)[0]
        out.update(m.rstrip("/") or "/" for m in _WATCH.findall(line))
        out.update(m.rstrip("/") or "/" for m in _FIELD.findall(line))
    return out


def _audit_examples(path: str) -> tuple[HostSnapshot, HostSnapshot]:
    target = path if not path.startswith("unit:") else "/lib/systemd/system/" + path[5:]
    units = {
        "docker.service": "/lib/systemd/system/docker.service",
        "docker.socket": "/lib/systemd/system/docker.socket",
    }
    files = {target: FileInfo(target, True, 0, 0, 0o644)}
    bad = example_snapshot(audit_rules=("-w /tmp -p wa -k x",), unit_paths=units, files=files)
    good = example_snapshot(
        audit_rules=(f"-w {target} -p wa -k docker",), unit_paths=units, files=files
    )
    return bad, good


def _audit_rule(cis: str, path: str, what: str) -> None:
    def check(snap: HostSnapshot) -> Outcome:
        if not snap.local:
            return Skip("not a local host")
        target = resolve_target(snap, path)
        if not target:
            return Skip(f"{what} is not installed on this host")
        info = snap.files.get(target)
        if isinstance(info, FileInfo) and not info.exists:
            return Skip(f"{target} does not exist on this host", target=target)
        if isinstance(snap.audit_rules, Unavailable):
            return Fail(
                f"no audit rules loaded ({snap.audit_rules.reason}); watch {target}", target=target
            )
        if target.rstrip("/") in watched_paths(snap.audit_rules):
            return Pass(target=target)
        return Fail(
            f"no audit watch on {target} (add `-w {target} -p wa -k docker`)", target=target
        )

    check.__doc__ = (
        f"Changes to {what} should leave a trace in the audit log. Paths are matched exactly, "
        "from loaded rules and /etc/audit/rules.d (docker-bench matched substrings)."
    )
    shown = path[5:] if path.startswith("unit:") else path
    rules.rule(
        f"DW-H{int(cis.split('.')[-1]):03d}",
        f"Audit watch on {shown}",
        severity=LOW,
        kind="host",
        cis=cis,
        remediation=f"Add `-w {shown} -p wa -k docker` to /etc/audit/rules.d/docker.rules and "
        "run `augenrules --load`.",
        examples=lambda: _audit_examples(path),
    )(check)


for _cis, _path, _what in AUDIT_TARGETS:
    _audit_rule(_cis, _path, _what)


@rules.rule(
    "DW-H001",
    "Docker data root on its own filesystem",
    severity=LOW,
    kind="host",
    cis="1.1.1",
    remediation="Mount a separate partition (or logical volume) on /var/lib/docker (`data-root`).",
    examples=lambda: (
        example_snapshot(data_root_is_mount=False),
        example_snapshot(data_root_is_mount=True),
    ),
)
def data_root_partition(snap: HostSnapshot) -> Outcome:
    """Images and containers filling the data root then fill only their own filesystem."""
    root = snap.daemon.info.get("DockerRootDir", "/var/lib/docker")
    match snap.data_root_is_mount:
        case Unavailable(reason):
            return Skip(reason)
        case True:
            return Pass(evidence={"data_root": root})
        case _:
            return Fail(f"{root} is not a separate mount point", {"data_root": root})


@rules.rule(
    "DW-H002",
    "docker group holds only approved users",
    severity=MED,
    kind="host",
    cis="1.1.2",
    remediation="Remove users from the docker group (`gpasswd -d USER docker`); list approved "
    "ones under `docker_group_allow` in dockward.toml.",
    settings=("docker_group_allow",),
    examples=lambda: (
        example_snapshot(docker_group=("mallory",)),
        example_snapshot(docker_group=()),
    ),
)
def docker_group(snap: HostSnapshot, approved: tuple[str, ...] = ()) -> Outcome:
    """Members of the docker group are root on the host without a password. Approved members
    come from `docker_group_allow` in the config; without it every member is reported."""
    match snap.docker_group:
        case Unavailable(reason):
            return Skip(reason)
        case members if approved:
            extra = [m for m in members if m not in approved]
            if extra:
                return Fail(
                    f"docker group members not approved: {', '.join(extra)}", {"members": extra}
                )
            return Pass("all docker group members are approved", {"members": list(members)})
        case ():
            return Pass("docker group is empty")
        case members:
            return Fail(f"docker group members: {', '.join(members)}", {"members": list(members)})


# Docker Engine releases and the end of their support (docs.docker.com/engine/release-notes).
ENGINE_EOL: dict[str, str] = {
    "19.03": "2021-02-01",
    "20.10": "2023-12-10",
    "23.0": "2024-02-01",
    "24.0": "2024-06-08",
    "25.0": "2024-10-22",
    "26.0": "2024-06-01",
    "26.1": "2025-01-22",
    "27.0": "2024-09-01",
    "27.1": "2024-09-01",
    "27.2": "2024-09-01",
    "27.3": "2024-11-01",
    "27.4": "2025-01-01",
    "27.5": "2025-05-01",
}


@rules.rule(
    "DW-H020",
    "Docker Engine is a supported release",
    severity=MED,
    kind="host",
    cis="1.2.2",
    remediation="Upgrade Docker Engine to a supported release (docs.docker.com/engine/install).",
    examples=lambda: (
        example_snapshot(
            daemon=replace(example_snapshot().daemon, version={"Version": "20.10.24+dfsg1"})
        ),
        example_snapshot(),
    ),
)
def engine_supported(snap: HostSnapshot, today: dt.date | None = None) -> Outcome:
    """An engine past its end of life gets no security fixes. Judged from a table of release
    end-of-life dates, not from 'the YY.MM of 30 days ago' (docker-bench)."""
    version = str(snap.daemon.version.get("Version") or "")
    m = re.match(r"(\d+)\.(\d+)", version)
    if not m:
        return Skip("engine version unknown")
    major, minor = int(m.group(1)), int(m.group(2))
    series = f"{major}.{minor:02d}" if major < 23 else f"{major}.{minor}"
    eol = ENGINE_EOL.get(series)
    if eol and dt.date.fromisoformat(eol) <= (today or dt.date.today()):
        return Fail(f"engine {version} reached end of life on {eol}", {"version": version})
    return Pass(evidence={"version": version})


@rules.rule(
    "DW-H021",
    "Content trust enabled for the Docker client",
    severity=LOW,
    kind="host",
    cis="4.5",
    remediation="Set `DOCKER_CONTENT_TRUST=1` in /etc/environment (or the CI environment), or "
    "verify signatures at admission with `dockward proxy`.",
    examples=lambda: (
        example_snapshot(content_trust={}),
        example_snapshot(content_trust={"/etc/environment": "1"}),
    ),
)
def content_trust(snap: HostSnapshot) -> Outcome:
    """Content trust makes `docker pull` refuse unsigned images. Read from the host's login
    environment files, not from the auditor's own environment (docker-bench's mistake)."""
    match snap.content_trust:
        case Unavailable(reason):
            return Skip(reason)
        case found if any(v == "1" for v in found.values()):
            return Pass(evidence=dict(found))
        case found:
            return Fail("DOCKER_CONTENT_TRUST is not set to 1 in the host environment", dict(found))


@rules.rule(
    "DW-O001",
    "No image sprawl",
    severity=INFO,
    kind="host",
    cis="6.1",
    scored=False,
    remediation="Remove unused images (`docker image prune -a` after review).",
    examples=lambda: (
        example_snapshot(images=_imgs(3)),
        example_snapshot(),
    ),
)
def image_sprawl(snap: HostSnapshot) -> Outcome:
    """Unused images carry old vulnerabilities and may be started by mistake."""
    used = {c.image_id for c in snap.containers}
    unused = [i.display_name for i in snap.images if i.id not in used]
    if unused:
        return Info(
            f"{len(unused)} of {len(snap.images)} images are not used by any container",
            {"unused": unused[:20]},
        )
    return Pass(f"{len(snap.images)} images, all in use")


def _imgs(n: int) -> tuple[object, ...]:
    from dockward.model.image import ImageSpec

    return tuple(ImageSpec(id=f"sha256:{i}", repo_tags=(f"x:{i}",)) for i in range(n))


@rules.rule(
    "DW-O002",
    "No container sprawl",
    severity=INFO,
    kind="host",
    cis="6.2",
    scored=False,
    remediation="Remove containers that are not needed (`docker container prune` after review).",
    examples=lambda: (example_snapshot(containers=_stopped()), example_snapshot()),
)
def container_sprawl(snap: HostSnapshot) -> Outcome:
    """Stopped containers keep their configuration and data and can start again."""
    stopped = [
        c.display_name
        for c in snap.containers
        if c.state not in ("running", "paused", "restarting")
    ]
    if stopped:
        return Info(
            f"{len(stopped)} of {len(snap.containers)} containers are not running",
            {"stopped": stopped[:20]},
        )
    return Pass(f"{len(snap.containers)} containers, all running")


def _stopped() -> tuple[object, ...]:
    from dockward.model.container import ContainerSpec

    return (ContainerSpec(name="old", state="exited"),)


def _swarm_state(snap: HostSnapshot) -> str:
    return str((snap.daemon.info.get("Swarm") or {}).get("LocalNodeState") or "inactive")


def _swarm_snap(active: bool, **changes: Any) -> HostSnapshot:
    info = {
        "Swarm": {"LocalNodeState": "active" if active else "inactive", "ControlAvailable": active}
    }
    return example_snapshot(info=info, **changes)


@rules.rule(
    "DW-S001",
    "Swarm mode off unless needed",
    severity=LOW,
    kind="swarm",
    cis="5.1",
    remediation="`docker swarm leave` on hosts that do not run services (waive this check where "
    "swarm is used).",
    examples=lambda: (_swarm_snap(True), _swarm_snap(False)),
)
def swarm_off(snap: HostSnapshot) -> Outcome:
    """Swarm mode opens management ports and keeps cluster secrets on the host."""
    if _swarm_state(snap) == "active":
        return Fail("swarm mode is active")
    return Pass(evidence={"swarm": _swarm_state(snap)})


def _need_manager(snap: HostSnapshot) -> str | None:
    if _swarm_state(snap) != "active":
        return "swarm mode is not active"
    if not (snap.daemon.info.get("Swarm") or {}).get("ControlAvailable"):
        return "not a swarm manager"
    return None


@rules.rule(
    "DW-S002",
    "Manager count is minimal and odd",
    severity=LOW,
    kind="swarm",
    cis="7.1",
    remediation="Run an odd number of managers (1, 3 or 5): `docker node demote NODE`.",
    examples=lambda: (
        _swarm_snap(
            True,
            swarm_nodes=(
                {"ManagerStatus": {"Leader": True}},
                {"ManagerStatus": {"Reachability": "reachable"}},
            ),
        ),
        _swarm_snap(
            True, swarm_nodes=({"ManagerStatus": {"Leader": True}}, {"Spec": {"Role": "worker"}})
        ),
    ),
)
def manager_count(snap: HostSnapshot) -> Outcome:
    """An even number of managers adds attack surface without adding fault tolerance.
    docker-bench counted Leader rows, which is always one."""
    why = _need_manager(snap)
    if why:
        return Skip(why)
    if isinstance(snap.swarm_nodes, Unavailable):
        return Skip(snap.swarm_nodes.reason)
    managers = sum(1 for n in snap.swarm_nodes if n.get("ManagerStatus") is not None)
    if managers % 2 == 0 or managers > 7:
        return Fail(f"{managers} managers", {"managers": managers})
    return Pass(evidence={"managers": managers})


@rules.rule(
    "DW-S003",
    "Swarm management port bound to one interface",
    severity=MED,
    kind="swarm",
    cis="7.2",
    remediation="`docker swarm init --listen-addr 10.0.0.5:2377 --advertise-addr 10.0.0.5`.",
    examples=lambda: (
        _swarm_snap(True, listening=("0.0.0.0:2377",)),
        _swarm_snap(True, listening=("10.0.0.5:2377",)),
    ),
)
def swarm_port_bound(snap: HostSnapshot) -> Outcome:
    """Port 2377 on every interface exposes the cluster's management API widely."""
    if _swarm_state(snap) != "active":
        return Skip("swarm mode is not active")
    if isinstance(snap.listening, Unavailable):
        return Skip(snap.listening.reason)
    wide = [
        a
        for a in snap.listening
        if a.endswith(":2377") and a.rsplit(":", 1)[0] in ("0.0.0.0", "::", "[::]", "*")
    ]
    if wide:
        return Fail(f"2377 listens on all interfaces ({', '.join(wide)})")
    return Pass()


@rules.rule(
    "DW-S004",
    "Overlay networks are encrypted",
    severity=MED,
    kind="swarm",
    cis="7.3",
    remediation="Create overlay networks with `--opt encrypted`.",
    examples=lambda: (
        _swarm_snap(True, networks=(NetworkInfo("app", "1", "overlay", {}, scope="swarm"),)),
        _swarm_snap(
            True, networks=(NetworkInfo("app", "1", "overlay", {"encrypted": ""}, scope="swarm"),)
        ),
    ),
)
def overlay_encrypted(snap: HostSnapshot) -> Iterator[Outcome]:
    """Overlay traffic between nodes is plain VXLAN unless encrypted."""
    if _swarm_state(snap) != "active":
        yield Skip("swarm mode is not active")
        return
    overlays = [n for n in snap.networks if n.driver == "overlay" and n.name != "ingress"]
    if not overlays:
        yield Pass("no overlay networks")
    for n in overlays:
        if "encrypted" in n.options:
            yield Pass(target=f"network {n.name}")
        else:
            yield Fail(f"overlay network {n.name} is not encrypted", target=f"network {n.name}")


@rules.rule(
    "DW-S005",
    "Manager autolock is on",
    severity=MED,
    kind="swarm",
    cis="7.5",
    remediation="`docker swarm update --autolock=true` and keep the unlock key offline.",
    examples=lambda: (
        _swarm_snap(True, swarm={"Spec": {"EncryptionConfig": {"AutoLockManagers": False}}}),
        _swarm_snap(True, swarm={"Spec": {"EncryptionConfig": {"AutoLockManagers": True}}}),
    ),
)
def autolock(snap: HostSnapshot) -> Outcome:
    """Without autolock, a stolen manager disk gives the raft keys and every secret."""
    why = _need_manager(snap)
    if why:
        return Skip(why)
    spec = snap.swarm.get("Spec") or {}
    if (spec.get("EncryptionConfig") or {}).get("AutoLockManagers"):
        return Pass()
    return Fail("autolock is off")


@rules.rule(
    "DW-S006",
    "Node certificates rotate at least every 90 days",
    severity=LOW,
    kind="swarm",
    cis="7.7",
    remediation="`docker swarm update --cert-expiry 2160h`.",
    examples=lambda: (
        _swarm_snap(True, swarm={"Spec": {"CAConfig": {"NodeCertExpiry": 400 * 86400 * 10**9}}}),
        _swarm_snap(True, swarm={"Spec": {"CAConfig": {"NodeCertExpiry": 60 * 86400 * 10**9}}}),
    ),
)
def cert_expiry(snap: HostSnapshot) -> Outcome:
    """Short-lived node certificates limit what a leaked one is worth."""
    why = _need_manager(snap)
    if why:
        return Skip(why)
    ns = ((snap.swarm.get("Spec") or {}).get("CAConfig") or {}).get("NodeCertExpiry") or 0
    days = int(ns) // (86400 * 10**9)
    if days > 90:
        return Fail(f"node certificates expire after {days} days", {"days": days})
    return Pass(evidence={"days": days})
