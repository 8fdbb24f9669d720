"""How a rule's finding is fixed in a proposal, declared with the rule (`RuleSet.rule(fix=...)`).

A daemon rule's fix says which daemon.json value makes it pass; `dockward harden daemon` hands
it a `DaemonFixer`, which decides whether the value can be written on this host (a dockerd flag
sets the key, the user skipped it, the host is not ready for it) and records the change, the
blocked write or the manual step. So a new rule brings its fix along and no table of rule ids is
kept beside the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dockward.model.finding import Status
from dockward.model.host import HostSnapshot


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    """The user's choices for a daemon proposal (`dockward daemon harden` flags)."""

    userns_remap: str = "default"  # "" leaves remapping off
    log_driver: str = ""  # a central log driver to switch to (DW-D013); "" keeps the driver
    log_opts: Mapping[str, str] = field(default_factory=dict)
    ip: str = ""  # default bind address of published ports (DW-D020); "" leaves it
    seccomp_profile: str = ""  # absolute path of a daemon-wide seccomp profile
    nofile: tuple[int, int] | None = None  # None: 65536, capped at dockerd's own hard limit
    skip: frozenset[str] = frozenset()  # keys to leave alone


class DaemonFixer(Protocol):
    """What a daemon rule's fix sees of the proposal it adds to (bound to that rule)."""

    @property
    def snap(self) -> HostSnapshot:
        """The host, its daemon settings as the file on disk now describes them."""

    @property
    def options(self) -> DaemonOptions: ...

    @property
    def status(self) -> Status | None:
        """This rule's result now: FAIL, INFO, or None when it passes or skips."""

    @property
    def current(self) -> Mapping[str, Any]:
        """daemon.json as it is."""

    @property
    def proposed(self) -> Mapping[str, Any]:
        """daemon.json with the changes proposed so far."""

    @property
    def nofile_ceiling(self) -> int | None:
        """dockerd's own hard open-files limit (None: unknown)."""

    def set(self, key: str, value: Any, why: str, *, mitigation: bool = False) -> bool:
        """Propose `key: value`; False when nothing changes or the write is blocked.
        A mitigation does not make the rule pass (it is not checked again after a restart)."""

    def remove(self, key: str, why: str) -> bool: ...

    def warn(self, message: str) -> None: ...

    def manual(self) -> None:
        """Leave this rule to the user: the proposal names it with its remediation."""


DaemonFix = Callable[[DaemonFixer], None]


@dataclass(frozen=True, slots=True)
class SetWhenFailing:
    """The common fix: one daemon.json key, set while the rule fails."""

    key: str
    value: Any
    why: str

    def __call__(self, fixer: DaemonFixer) -> None:
        if fixer.status is Status.FAIL:
            fixer.set(self.key, self.value, self.why)
