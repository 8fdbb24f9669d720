"""File ownership and permission checks (CIS section 3). Modes are compared as bitmasks."""

from __future__ import annotations

from collections.abc import Iterator

from dockward.model.finding import Severity
from dockward.model.host import FileInfo, HostSnapshot, Unavailable
from dockward.rules.daemon import example_snapshot
from dockward.rules.registry import Fail, Outcome, Pass, RuleSet, Skip

rules = RuleSet("files")

# (CIS id of the owner check, CIS id of the mode check, what, target spec, mode mask,
#  allowed group names). A target spec is a path, `unit:NAME`, `setting:KEY` or `tree:DIR`.
FILE_CHECKS: tuple[tuple[str, str, str, str, int, tuple[str, ...]], ...] = (
    ("3.1", "3.2", "docker.service unit", "unit:docker.service", 0o644, ("root",)),
    ("3.3", "3.4", "docker.socket unit", "unit:docker.socket", 0o644, ("root",)),
    ("3.5", "3.6", "/etc/docker", "/etc/docker", 0o755, ("root",)),
    ("3.7", "3.8", "registry certificates", "tree:/etc/docker/certs.d", 0o444, ("root",)),
    ("3.9", "3.10", "TLS CA certificate", "setting:tlscacert", 0o444, ("root",)),
    ("3.11", "3.12", "server certificate", "setting:tlscert", 0o444, ("root",)),
    ("3.13", "3.14", "server key", "setting:tlskey", 0o400, ("root",)),
    ("3.15", "3.16", "Docker socket", "socket:", 0o660, ("docker", "root")),
    ("3.17", "3.18", "daemon.json", "config:daemon.json", 0o644, ("root",)),
    ("3.19", "3.20", "/etc/default/docker", "/etc/default/docker", 0o644, ("root",)),
    ("3.22", "3.21", "/etc/sysconfig/docker", "/etc/sysconfig/docker", 0o644, ("root",)),
    ("3.23", "3.24", "containerd socket", "/run/containerd/containerd.sock", 0o660, ("root",)),
)


def file_targets(snap: HostSnapshot, spec: str) -> list[str] | str:
    """The concrete paths for a target spec, or why there are none."""
    kind, _, rest = spec.partition(":")
    if spec.startswith("/"):
        return [spec]
    match kind:
        case "unit":
            path = snap.unit_paths.get(rest, "")
            return [path] if path else f"{rest} unit not installed"
        case "setting":
            value = snap.daemon.value(rest)
            return [str(value)] if value else f"{rest} not configured"
        case "tree":
            return list(snap.globbed.get(rest, ())) or f"no files under {rest}"
        case "socket":
            return [snap.socket_path] if snap.socket_path else "daemon socket unknown"
        case "config":
            return [snap.daemon.config_file or "/etc/docker/daemon.json"]
        case _:
            return f"unknown target {spec}"


def _infos(snap: HostSnapshot, spec: str) -> Iterator[tuple[str, FileInfo] | Skip]:
    if not snap.local:
        yield Skip("not a local host")
        return
    paths = file_targets(snap, spec)
    if isinstance(paths, str):
        yield Skip(paths)
        return
    for path in paths:
        info = snap.files.get(path, Unavailable(f"{path} not collected"))
        if isinstance(info, Unavailable):
            yield Skip(info.reason, target=path)
        elif not info.exists:
            yield Skip(f"{path} does not exist", target=path)
        else:
            yield path, info


def _file_examples(spec: str, mask: int, owner_check: bool) -> tuple[HostSnapshot, HostSnapshot]:
    path = {
        "unit": "/lib/systemd/system/x",
        "setting": "/etc/docker/tls/x.pem",
        "tree": "/etc/docker/certs.d/reg/ca.crt",
        "config": "/etc/docker/daemon.json",
        "socket": "/var/run/docker.sock",
    }.get(spec.partition(":")[0], spec)
    units = {"docker.service": path, "docker.socket": path}
    settings_key = spec.partition(":")[2] if spec.startswith("setting:") else None

    def snap(info: FileInfo) -> HostSnapshot:
        s = example_snapshot(
            {settings_key: path} if settings_key else None, files={path: info}, unit_paths=units
        )
        if spec.startswith("socket:"):
            from dataclasses import replace

            s = replace(s, socket_path=path)
        if spec.startswith("tree:"):
            from dataclasses import replace

            s = replace(s, globbed={spec[5:]: (path,)})
        return s

    good = FileInfo(path, True, 0, 0, mask, "root", "root")
    bad = (
        FileInfo(path, True, 1000, 1000, mask, "alice", "alice")
        if owner_check
        else FileInfo(path, True, 0, 0, 0o477 if mask != 0o400 else 0o600, "root", "root")
    )
    return snap(bad), snap(good)


def _register(
    cis_owner: str, cis_mode: str, what: str, spec: str, mask: int, groups: tuple[str, ...]
) -> None:
    def owner(snap: HostSnapshot) -> Iterator[Outcome]:
        for item in _infos(snap, spec):
            if isinstance(item, Skip):
                yield item
                continue
            path, info = item
            ok = info.uid == 0 and (info.gid == 0 or info.group in groups)
            ev = {"owner": f"{info.owner or info.uid}:{info.group or info.gid}"}
            yield (
                Pass(evidence=ev, target=path)
                if ok
                else Fail(f"{path} is owned by {ev['owner']}", ev, target=path)
            )

    def mode(snap: HostSnapshot) -> Iterator[Outcome]:
        for item in _infos(snap, spec):
            if isinstance(item, Skip):
                yield item
                continue
            path, info = item
            extra = info.mode & ~mask & 0o7777
            ev = {"mode": f"{info.mode:04o}", "allowed": f"{mask:04o}"}
            if extra:
                yield Fail(
                    f"{path} has mode {info.mode:04o} (bits {extra:04o} beyond {mask:04o})",
                    ev,
                    target=path,
                )
            else:
                yield Pass(evidence=ev, target=path)

    group_text = ":".join(("root", groups[0])) if groups[0] != "root" else "root:root"
    owner.__doc__ = f"{what} must be owned by {group_text} so no other user can change it."
    mode.__doc__ = (
        f"{what} must have no permission bit outside {mask:04o} (compared as bits: 0477 fails "
        "and 0000 passes, unlike docker-bench's decimal comparison)."
    )
    target_hint = spec.partition(":")[2] if ":" in spec and not spec.startswith("/") else spec
    rules.rule(
        f"DW-F{int(cis_owner.split('.')[1]):03d}",
        f"{what} owned by {group_text}",
        severity=Severity.MEDIUM,
        kind="files",
        cis=cis_owner,
        remediation=f"`chown {group_text} {target_hint}`",
        examples=lambda: _file_examples(spec, mask, True),
    )(owner)
    rules.rule(
        f"DW-F{int(cis_mode.split('.')[1]):03d}",
        f"{what} permissions {mask:04o} or stricter",
        severity=Severity.MEDIUM,
        kind="files",
        cis=cis_mode,
        remediation=f"`chmod {mask:04o} {target_hint}` (or stricter)",
        examples=lambda: _file_examples(spec, mask, False),
    )(mode)


for _row in FILE_CHECKS:
    _register(*_row)
