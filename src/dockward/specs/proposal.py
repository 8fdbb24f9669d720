"""A hardened proposal -> ContainerSpec: the deployed spec with `harden`'s settings applied, so
the container rules judge the proposal the way they judge every other input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from dockward.model.container import ContainerSpec, Mount, SecurityOptions


class HardeningSettings(Protocol):
    """What a proposal sets (`dockward.harden.runner.Settings` has these fields)."""

    @property
    def cap_add(self) -> tuple[str, ...]: ...
    @property
    def cap_drop(self) -> tuple[str, ...]: ...
    @property
    def seccomp(self) -> str | None: ...
    @property
    def no_new_privileges(self) -> bool: ...
    @property
    def read_only(self) -> bool: ...
    @property
    def user(self) -> str | None: ...
    @property
    def tmpfs(self) -> Mapping[str, str]: ...
    @property
    def memory(self) -> int: ...
    @property
    def pids_limit(self) -> int: ...
    @property
    def nano_cpus(self) -> int: ...


def from_proposal(before: ContainerSpec, s: HardeningSettings, seccomp_path: str) -> ContainerSpec:
    """`before` with the proposal's settings; the seccomp profile as the file it is written to."""
    raw = ["no-new-privileges:true"] if s.no_new_privileges else []
    if s.seccomp:
        raw.append(f"seccomp={seccomp_path}")
    mounts = before.mounts + tuple(Mount("tmpfs", "", d) for d in s.tmpfs)
    return before.with_changes(
        cap_drop=s.cap_drop,
        cap_add=s.cap_add,
        user=s.user if s.user is not None else before.user,
        security=SecurityOptions(
            seccomp=seccomp_path if s.seccomp else before.security.seccomp,
            apparmor=before.security.apparmor,
            no_new_privileges=s.no_new_privileges or before.security.no_new_privileges,
            raw=tuple(raw),
        ),
        read_only_rootfs=s.read_only,
        mounts=mounts,
        memory=s.memory or before.memory,
        pids_limit=s.pids_limit or before.pids_limit,
        nano_cpus=s.nano_cpus or before.nano_cpus,
        privileged=False,
    )
