"""Learn a seccomp profile from a workload, then prove it by running the workload under it.

Method (see auditlog.py): run once under `{"defaultAction": "SCMP_ACT_LOG"}` with every other
setting as it will be hardened, read every AUDIT_SECCOMP record from the audit netlink socket,
map (arch, number) to names, and keep Docker's default rules (with their argument checks) for
just those names. The result is never wider than Docker's default for the same capabilities:
a call the default denies stays denied and is reported.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from dockward.errors import DockwardError
from dockward.harden.auditlog import SeccompRecorder
from dockward.harden.runner import (
    DEFAULT_SETTINGS,
    Outcome,
    Settings,
    Workload,
    judge,
    run_once,
    started,
)
from dockward.model.container import ContainerSpec
from dockward.profiles.compare import restrict
from dockward.profiles.default import default_for
from dockward.profiles.seccomp import SeccompProfile, allowed, dumps
from dockward.profiles.syscalls import AUDIT_ARCH_TABLE, names_by_number

LOG_PROFILE = json.dumps({"defaultAction": "SCMP_ACT_LOG"})
# Calls a process needs at its very end or on a signal, which a short recording can miss.
RUNTIME_FLOOR = frozenset({"execve", "exit", "exit_group", "rt_sigreturn", "restart_syscall"})
# vDSO calls never enter the kernel, so they are never recorded; allowed for where the vDSO is off.
VDSO = frozenset({"clock_gettime", "clock_getres", "gettimeofday", "time", "getcpu"})
# Waiting calls: whether a process makes them depends on timing (a peer that answers at once is
# never polled for), so a recording on a quiet host misses what a busy host needs.
WAITING = frozenset(
    {
        "poll",
        "ppoll",
        "select",
        "pselect6",
        "epoll_wait",
        "epoll_pwait",
        "nanosleep",
        "clock_nanosleep",
        "futex",
        "sched_yield",
    }
)
# A call the C library falls back to when the first fails with ENOSYS (glibc 2.34+ creates
# threads with clone3; Docker's default answers clone3 with ENOSYS without CAP_SYS_ADMIN).
FALLBACKS = {"clone3": ("clone",)}
_ARCH_SCMP = {"x86_64": "SCMP_ARCH_X86_64", "x86": "SCMP_ARCH_X86"}
LOCK_PATH = "/run/lock/dockward-learn.lock"


@dataclass(frozen=True, slots=True)
class LearnedProfile:
    profile: SeccompProfile
    observed: frozenset[str]  # names seen in the recording
    added: frozenset[str]  # floor and vDSO calls added without being seen
    denied_by_default: frozenset[str]  # seen, but Docker's default denies them: left out
    unknown: tuple[tuple[int, int], ...]  # (audit arch, number) no table names
    records: int
    lost: int | None  # records the kernel dropped (None: unknown, -1: reader overran)
    recording: Outcome
    seconds: float
    executables: frozenset[str] = frozenset()  # programs run (from the records' exe field)

    @property
    def syscall_count(self) -> int:
        return len(allowed(self.profile))


@contextlib.contextmanager
def _exclusive(path: str = LOCK_PATH) -> Iterator[None]:
    """One learning run at a time on a host: records are attributed to the one container."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def capabilities_of(settings: Settings) -> frozenset[str]:
    return ContainerSpec(cap_add=settings.cap_add, cap_drop=settings.cap_drop).capabilities


def learn_seccomp(
    client: Any,
    workload: Workload,
    settings: Settings = DEFAULT_SETTINGS,
    *,
    prefix: str = "dockward-harden",
    service: bool | None = None,
) -> LearnedProfile:
    """Record the workload's syscalls under `settings` and build the minimal profile."""
    t0 = time.monotonic()
    with _exclusive(), SeccompRecorder() as rec:
        with started(
            client, workload, replace(settings, seccomp=LOG_PROFILE), prefix=prefix
        ) as cid:
            outcome = judge(client, cid, workload, service=service, stop=True)
        rec.drain()
    if not outcome.ok:
        raise DockwardError(
            f"the workload fails even while recording (no syscall denied): {outcome.reason}"
        )
    observed: set[str] = set()
    unknown: list[tuple[int, int]] = []
    arches: set[str] = set()
    for arch, nr in sorted(rec.syscalls_of(cid)):
        table = AUDIT_ARCH_TABLE.get(arch)
        name = names_by_number(table).get(nr) if table else None
        if name is None:
            unknown.append((arch, nr))
            continue
        observed.add(name)
        if table:
            arches.add(_ARCH_SCMP[table])
    if not observed:
        raise DockwardError("no syscall was recorded: is the audit multicast group readable?")
    base = default_for(capabilities_of(settings))
    permitted = allowed(base)
    keep = learned_names(observed, permitted)
    profile = learned_profile(base, observed, keep, arches)
    return LearnedProfile(
        profile=profile,
        observed=frozenset(observed),
        added=frozenset(keep - observed),
        denied_by_default=frozenset(observed - permitted),
        unknown=tuple(unknown),
        records=rec.count,
        lost=rec.lost,
        recording=outcome,
        seconds=time.monotonic() - t0,
        executables=frozenset(rec.executables_of(cid)),
    )


def learned_names(observed: set[str], permitted: frozenset[str]) -> set[str]:
    """The calls the learned profile allows: what was observed, the runtime floor, vDSO and
    waiting calls, and each observed call's fallback, as far as the default permits them."""
    fallbacks = {f for name in observed for f in FALLBACKS.get(name, ())}
    return (observed | fallbacks | RUNTIME_FLOOR | VDSO | WAITING) & permitted


def learned_profile(
    base: SeccompProfile, observed: set[str], keep: set[str], arches: set[str]
) -> SeccompProfile:
    """The default's rules for `keep`, and for an observed call the default answers with an
    errno (clone3's ENOSYS, so the C library falls back to clone), that same answer instead of
    the profile's EPERM: a call the recording saw succeed fails as it would under the default."""
    profile = restrict(base, keep | observed)
    native = "SCMP_ARCH_X86_64"
    return replace(
        profile,
        arch_map=(),
        architectures=tuple(sorted(arches | {native}, key=lambda a: a != native)),
    )


def verify_seccomp(
    client: Any,
    workload: Workload,
    settings: Settings,
    profile: SeccompProfile,
    *,
    prefix: str = "dockward-harden",
    service: bool | None = None,
) -> Outcome:
    """Run the workload under the profile (enforced by runc) and judge it."""
    return run_once(
        client,
        workload,
        replace(settings, seccomp=dumps(profile)),
        prefix=prefix,
        service=service,
    )
