"""Observe a workload, propose its hardened spec, prove it works, and say what broke if not.

Each hardening step is tried by running the workload with it (on top of the steps already
kept); a step that breaks the workload is left out and reported. The final spec is run once
more with everything together (`verify`); if that fails, each setting is reverted in turn to
name the one that broke it.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from dockward import specs
from dockward.harden.caps import minimal_capabilities
from dockward.harden.learn import LearnedProfile, learn_seccomp
from dockward.harden.runner import (
    Settings,
    Workload,
    bounded,
    judge,
    run_once,
    started,
    state,
)
from dockward.harden.users import resolve_user
from dockward.model.container import DEFAULT_CAPABILITIES, ContainerSpec, Mount
from dockward.model.finding import Report, Result, Status
from dockward.profiles.seccomp import dumps
from dockward.rules.container import rules as container_rules
from dockward.rules.registry import Context, run_check

MIB = 1024 * 1024
# Paths the engine manages itself; a write there is not the workload's.
_ENGINE_PATHS = ("/dev", "/proc", "/sys", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
NON_ROOT_USER = "65534:65534"


@dataclass(frozen=True, slots=True)
class Observation:
    written: tuple[str, ...]  # paths from `docker diff` (added or changed)
    peak_memory: int
    peak_pids: int
    outcome_ok: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Step:
    setting: str
    kept: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Proposal:
    before: ContainerSpec
    after: ContainerSpec
    settings: Settings
    learned: LearnedProfile | None
    observation: Observation
    steps: tuple[Step, ...]
    verified: bool | None = None
    broken_by: tuple[str, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)


def observe(
    client: Any, workload: Workload, settings: Settings, *, prefix: str, service: bool | None
) -> Observation:
    """Run as given; sample memory/pids while it runs; list what it wrote."""
    peak_mem = peak_pids = 0
    with started(client, workload, settings, prefix=prefix) as cid:
        deadline = time.monotonic() + workload.duration
        while time.monotonic() < deadline:
            try:
                st = bounded(lambda: client.stats(cid, stream=False), 10, "stats")
            except Exception:
                break
            mem = st.get("memory_stats") or {}
            peak_mem = max(peak_mem, int(mem.get("max_usage") or mem.get("usage") or 0))
            peak_pids = max(peak_pids, int((st.get("pids_stats") or {}).get("current") or 0))
            if not state(client, cid).get("Running"):
                break
        outcome = judge(client, cid, replace(workload, duration=0.2), service=service)
        changes = bounded(lambda: client.diff(cid), 20, "diff") or []
    targets = {m.target for m in workload.mounts} | set(workload.tmpfs)
    return Observation(
        written_paths(changes, targets), peak_mem, peak_pids, outcome.ok, outcome.reason
    )


def _engine_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in _ENGINE_PATHS)


def written_paths(changes: list[dict[str, Any]], mount_targets: set[str]) -> tuple[str, ...]:
    """What the workload wrote, from `docker diff`: added or changed paths, less the engine's own
    and the mount points the engine made (a bind's or volume's target and its new parents)."""

    # /var/run is a link to /run in Debian-family images: the engine makes a bind's target there
    targets = mount_targets | {
        "/run" + t.removeprefix("/var/run") for t in mount_targets if t.startswith("/var/run/")
    }

    def mount_point(path: str) -> bool:
        return any(t == path or t.startswith(path.rstrip("/") + "/") for t in targets)

    return tuple(
        sorted(
            c["Path"]
            for c in changes
            if c.get("Kind") in (0, 1)
            and not _engine_path(c["Path"])
            and not mount_point(c["Path"])
        )
    )


def tmpfs_targets(written: tuple[str, ...]) -> tuple[str, ...]:
    """The directories to back with tmpfs: the shallowest written directory of each tree."""
    dirs: set[str] = set()
    for path in written:
        parts = path.strip("/").split("/")
        if not any(q.startswith(path.rstrip("/") + "/") for q in written):
            parts = parts[:-1]  # a leaf (a file): its directory is what must be writable
        if not parts or not parts[0]:
            continue  # a file at / itself: the parent cannot be a tmpfs
        dirs.add("/" + "/".join(parts[: 2 if parts[0] in ("var", "usr", "srv", "opt") else 1]))
    out = sorted(dirs)
    return tuple(d for d in out if not any(d != o and d.startswith(o + "/") for o in out))


def tmpfs_owner(user: str) -> str:
    """tmpfs options owning it to a numeric non-root `uid[:gid]` ("" for root or a name)."""
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or int(uid) == 0:
        return ""
    return f"uid={uid},gid={gid if gid.isdigit() else uid}"


def _limits(obs: Observation) -> tuple[int, int]:
    memory = max(64 * MIB, ((obs.peak_memory * 2) // MIB + 1) * MIB)
    pids = max(32, obs.peak_pids * 2)
    return memory, pids


def harden(
    client: Any,
    workload: Workload,
    before: ContainerSpec,
    *,
    prefix: str = "dockward-harden",
    service: bool | None = None,
    try_non_root: bool = True,
    seccomp_path: str = "seccomp.json",
    do_verify: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Proposal:
    say = progress or (lambda _m: None)
    timings: dict[str, float] = {}
    steps: list[Step] = []
    t = time.monotonic()
    say("observing the workload as it runs today")
    # As deployed: the engine's default capabilities plus the service's own cap_add.
    deployed = Settings(cap_add=workload.cap_add)
    obs = observe(client, workload, deployed, prefix=prefix, service=service)
    timings["observe"] = time.monotonic() - t
    if not obs.outcome_ok:
        from dockward.errors import DockwardError

        raise DockwardError(f"the workload does not work as it is: {obs.reason}")
    t = time.monotonic()
    caps = minimal_capabilities(
        client,
        workload,
        candidates=sorted(set(DEFAULT_CAPABILITIES) | set(workload.cap_add)),
        known_working=True,  # observe just ran it with exactly these
        prefix=prefix,
        service=service,
        progress=say,
    )
    timings["capabilities"] = time.monotonic() - t
    settings = Settings(cap_drop=("ALL",), cap_add=caps.cap_add, no_new_privileges=True)
    steps.append(
        Step(
            "capabilities",
            True,
            f"cap_drop ALL, cap_add {list(caps.cap_add)} "
            f"({len(caps.before)} -> {len(caps.cap_add)}, {len(caps.trials)} runs)",
        )
    )

    def trial(name: str, candidate: Settings, detail: str) -> None:
        nonlocal settings
        say(f"trying {name}")
        outcome = run_once(client, workload, candidate, prefix=prefix, service=service)
        steps.append(
            Step(name, outcome.ok, detail if outcome.ok else f"breaks it: {outcome.reason}")
        )
        if outcome.ok:
            settings = candidate

    root = before.user.partition(":")[0] in ("", "0", "root")  # uid 0, whatever its group
    want_user = try_non_root and root
    memory, pids = _limits(obs)
    limits_detail = (
        f"memory {memory // MIB}MiB (peak {obs.peak_memory // MIB}MiB x2), pids {pids} "
        f"(peak {obs.peak_pids}), cpus 1"
    )

    deployed_user = workload.user or before.user
    if deployed_user and not root:
        # A named user: its uid/gid from the image's /etc/passwd and /etc/group.
        deployed_user = resolve_user(client, workload.image, deployed_user) or deployed_user

    def tmpfs_for(uid: str) -> dict[str, str]:
        # The tmpfs belongs to whoever runs the workload: the non-root user dockward chose, or
        # the deployed non-root user (a root-owned tmpfs breaks a writer owning its directories).
        owner = f"uid={uid},gid={uid}" if uid else tmpfs_owner(deployed_user)
        return {d: owner for d in tmpfs_targets(obs.written)}

    # Most workloads take every remaining setting at once: one run instead of four. Only when
    # the combination breaks it is each setting tried on its own, to name the one that does.
    t = time.monotonic()
    all_tmpfs = tmpfs_for("65534" if want_user else "")
    combined = replace(
        settings,
        user=NON_ROOT_USER if want_user else settings.user,
        read_only=True,
        tmpfs=all_tmpfs,
        memory=memory,
        pids_limit=pids,
        nano_cpus=1_000_000_000,
    )
    say("trying every remaining setting together")
    together = run_once(client, workload, combined, prefix=prefix, service=service)
    if together.ok:
        settings = combined
        steps.append(Step("no-new-privileges", True, "security_opt no-new-privileges:true"))
        if want_user:
            steps.append(Step("non-root user", True, f"user {NON_ROOT_USER}"))
        steps.append(
            Step("read-only rootfs", True, "read_only, tmpfs " + (", ".join(all_tmpfs) or "none"))
        )
        steps.append(Step("limits", True, limits_detail))
    else:
        trial("no-new-privileges", settings, "security_opt no-new-privileges:true")
        uid = ""
        if want_user:
            trial("non-root user", replace(settings, user=NON_ROOT_USER), f"user {NON_ROOT_USER}")
            if settings.user == NON_ROOT_USER:
                uid = "65534"
        tmpfs = tmpfs_for(uid)
        trial(
            "read-only rootfs",
            replace(settings, read_only=True, tmpfs=tmpfs),
            "read_only, tmpfs " + (", ".join(tmpfs) or "none"),
        )
        trial(
            "limits",
            replace(settings, memory=memory, pids_limit=pids, nano_cpus=1_000_000_000),
            limits_detail,
        )
    timings["settings"] = time.monotonic() - t
    t = time.monotonic()
    say("learning the seccomp profile")
    learned = learn_seccomp(client, workload, settings, prefix=prefix, service=service)
    timings["learn"] = time.monotonic() - t
    settings = replace(settings, seccomp=dumps(learned.profile))
    steps.append(Step("seccomp", True, f"{learned.syscall_count} syscalls learned"))
    t = time.monotonic()
    say("verifying the hardened container")
    verified: bool | None = None
    broken: tuple[str, ...] = ()
    if do_verify:
        verified, broken = verify(client, workload, settings, prefix=prefix, service=service)
    timings["verify"] = time.monotonic() - t
    # Every trial ran with the deployed tmpfs mounts (a write there is no `docker diff` change):
    # the proposal keeps them, with their options.
    settings = replace(settings, tmpfs={**workload.tmpfs, **settings.tmpfs})
    after = specs.from_proposal(before, settings, seccomp_path)
    return Proposal(before, after, settings, learned, obs, tuple(steps), verified, broken, timings)


SETTING_REVERTS: dict[str, Callable[[Settings], Settings]] = {
    "seccomp": lambda s: replace(s, seccomp=None),
    "capabilities": lambda s: replace(s, cap_drop=(), cap_add=()),
    "no-new-privileges": lambda s: replace(s, no_new_privileges=False),
    "non-root user": lambda s: replace(s, user=None),
    "read-only rootfs": lambda s: replace(s, read_only=False),
    "memory limit": lambda s: replace(s, memory=0),
    "pids limit": lambda s: replace(s, pids_limit=0),
    "cpu limit": lambda s: replace(s, nano_cpus=0),
}


def verify(
    client: Any, workload: Workload, settings: Settings, *, prefix: str, service: bool | None
) -> tuple[bool, tuple[str, ...]]:
    """Run with every setting; if it fails, name each setting whose revert alone fixes it."""
    if run_once(client, workload, settings, prefix=prefix, service=service).ok:
        return True, ()
    culprits = tuple(
        name
        for name, revert in SETTING_REVERTS.items()
        if revert(settings) != settings
        and run_once(client, workload, revert(settings), prefix=prefix, service=service).ok
    )
    return False, culprits or ("a combination of settings",)


def rule_report(spec: ContainerSpec, ctx: Context | None = None) -> Report:
    """The shared container rules over one spec (what `audit` would say about it)."""
    results: list[Result] = []
    for entry in container_rules:
        results += run_check(entry, spec, ctx or Context(), target=spec.display_name)
    return Report(command="harden", results=tuple(results))


def score(spec: ContainerSpec) -> tuple[float, list[str]]:
    report = rule_report(spec)
    failing = [r.rule.id for r in report.results if r.status is Status.FAIL]
    return report.score(), failing


def compose_override(service: str, s: Settings, seccomp_path: str) -> str:
    svc: dict[str, Any] = {"cap_drop": list(s.cap_drop) or None, "cap_add": list(s.cap_add) or None}
    opts = (["no-new-privileges:true"] if s.no_new_privileges else []) + (
        [f"seccomp:{seccomp_path}"] if s.seccomp else []
    )
    svc["security_opt"] = opts or None
    if s.read_only:
        svc["read_only"] = True
    if s.tmpfs:
        svc["tmpfs"] = [f"{d}:{o}" if o else d for d, o in s.tmpfs.items()]
    if s.user:
        svc["user"] = s.user
    if s.memory:
        svc["mem_limit"] = f"{s.memory // MIB}m"
    if s.pids_limit:
        svc["pids_limit"] = s.pids_limit
    if s.nano_cpus:
        svc["cpus"] = s.nano_cpus / 1e9
    svc = {k: v for k, v in svc.items() if v is not None}
    return yaml.safe_dump({"services": {service: svc}}, sort_keys=False)


def run_flags(s: Settings, seccomp_path: str) -> list[str]:
    flags: list[str] = []
    for c in s.cap_drop:
        flags += ["--cap-drop", c]
    for c in s.cap_add:
        flags += ["--cap-add", c]
    if s.no_new_privileges:
        flags += ["--security-opt", "no-new-privileges:true"]
    if s.seccomp:
        flags += ["--security-opt", f"seccomp={seccomp_path}"]
    if s.read_only:
        flags.append("--read-only")
    for d, o in s.tmpfs.items():
        flags += ["--tmpfs", f"{d}:{o}" if o else d]
    if s.user:
        flags += ["--user", s.user]
    if s.memory:
        flags += ["--memory", f"{s.memory // MIB}m"]
    if s.pids_limit:
        flags += ["--pids-limit", str(s.pids_limit)]
    if s.nano_cpus:
        flags += ["--cpus", f"{s.nano_cpus / 1e9:g}"]
    return flags


def run_line(workload: Workload, s: Settings, seccomp_path: str) -> str:
    argv = ["docker", "run", "-d", *run_flags(s, seccomp_path)]
    if workload.network not in ("", "none", "default"):
        argv += ["--network", workload.network]
    if workload.pid_mode:
        argv += ["--pid", workload.pid_mode]
    for g in workload.group_add:
        argv += ["--group-add", g]
    for m in workload.mounts:
        ro = ":ro" if m.read_only else ""
        argv += ["-v", f"{m.source}:{m.target}{ro}" if m.type == "bind" else f"{m.target}{ro}"]
    if workload.entrypoint is not None:
        argv += ["--entrypoint", workload.entrypoint[0] if workload.entrypoint else ""]
    argv.append(workload.image)
    argv += list(workload.entrypoint[1:] if workload.entrypoint else ()) + list(workload.command)
    return shlex.join(argv)


def workload_from_inspect(
    data: Mapping[str, Any], probe: tuple[str, ...], duration: float, network: str | None = None
) -> Workload:
    cfg = data.get("Config") or {}
    hc = cfg.get("Healthcheck") or {}
    test = tuple(hc.get("Test") or ())
    if not probe and test and test[0] in ("CMD", "CMD-SHELL"):
        probe = test[1:] if test[0] == "CMD" else ("/bin/sh", "-c", *test[1:])
    host = data.get("HostConfig") or {}
    net = str(host.get("NetworkMode") or "none")
    mounts = tuple(
        Mount(
            str(m.get("Type")),
            str(m.get("Source") or ""),
            str(m.get("Destination") or ""),
            not m.get("RW", True),
        )
        for m in data.get("Mounts") or ()
        if isinstance(m, dict) and m.get("Type") in ("bind", "volume") and m.get("Destination")
    )
    tmpfs = {str(k): str(v) for k, v in (host.get("Tmpfs") or {}).items()}
    tmpfs.update(
        {
            str(m["Target"]): ""
            for m in host.get("Mounts") or ()
            if isinstance(m, dict) and m.get("Type") == "tmpfs" and m.get("Target")
        }
    )
    devices = tuple(
        f"{d.get('PathOnHost')}:{d.get('PathInContainer')}:{d.get('CgroupPermissions') or 'rwm'}"
        for d in host.get("Devices") or ()
        if isinstance(d, dict)
    )
    return Workload(
        cap_add=tuple(host.get("CapAdd") or ()),
        sysctls=dict(host.get("Sysctls") or {}),
        devices=devices,
        image=str(cfg.get("Image") or data.get("Image") or ""),
        command=tuple(cfg.get("Cmd") or ()),
        entrypoint=tuple(cfg["Entrypoint"]) if cfg.get("Entrypoint") else None,
        user=str(cfg.get("User") or ""),
        env=tuple(cfg.get("Env") or ()),
        probe=probe,
        duration=duration,
        network=network or net,
        mounts=mounts,
        tmpfs=tmpfs,
        group_add=tuple(str(g) for g in host.get("GroupAdd") or ()),
        pid_mode=str(host.get("PidMode") or ""),
    )
