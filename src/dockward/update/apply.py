"""One container update as a journalled transaction: stop, rename, create, start, gate, commit.

The old container is only renamed (never removed) until the new one is healthy, so a failure
at any point - or a `kill -9` of dockward itself - can always be rolled back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import docker.errors

from dockward.errors import DockwardError
from dockward.update.health import HealthResult, Probe, wait_healthy
from dockward.update.hooks import EX_TEMPFAIL, HookResult, hook_command, run_hook
from dockward.update.journal import Entry, Journal
from dockward.update.recreate import CreatePlan, EndpointPlan, default_cgroupns, plan_recreate

BACKUP_SUFFIX = "-dockward-old"
STOP_SIGNAL_LABELS = ("dockward.update.stop-signal", "com.centurylinklabs.watchtower.stop-signal")

Progress = Callable[[str], None]
AppliedStatus = Literal["updated", "rolled-back", "skipped", "failed"]


class UpdateFailed(DockwardError):
    """An update could not complete (the container was restored where possible)."""


@dataclass(frozen=True, slots=True)
class UpdateOptions:
    health_timeout: float = 60.0
    min_uptime: float = 3.0
    stop_timeout: int = 10
    lifecycle_hooks: bool = False
    keep_old: bool = False
    revive_stopped: bool = False  # start a stopped container's replacement (Watchtower's flag)
    crash_after: str = ""  # fault injection for the kill -9 tests: SIGKILL ourselves after a step


@dataclass(frozen=True, slots=True)
class Applied:
    status: AppliedStatus
    reason: str
    new_id: str = ""
    health: HealthResult | None = None
    elapsed: float = 0.0
    hooks: tuple[HookResult, ...] = ()


@dataclass(frozen=True, slots=True)
class Recovered:
    name: str
    action: Literal["rolled-back", "finished", "lost"]
    detail: str


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


class Updater:
    def __init__(
        self,
        client: Any,
        journal: Journal,
        options: UpdateOptions | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.journal = journal
        self.options = options or UpdateOptions()
        self._say = progress or (lambda _msg: None)
        self._cgroupns_default: str | None = None

    @property
    def cgroupns_default(self) -> str:
        """The engine's default cgroup namespace mode, asked once."""
        if self._cgroupns_default is None:
            self._cgroupns_default = default_cgroupns(self.client.info() or {})
        return self._cgroupns_default

    def _step(self, entry: Entry) -> None:
        self.journal.write(entry)
        self._say(f"{entry.name}: {entry.phase}")
        self._maybe_crash(entry.phase)

    def _maybe_crash(self, step: str) -> None:
        if self.options.crash_after == step:
            os.kill(os.getpid(), signal.SIGKILL)

    def apply(
        self,
        old: Mapping[str, Any],
        old_image: Mapping[str, Any],
        new_image_id: str,
        image: str | None = None,
    ) -> Applied:
        """Replace `old` by the same container on the image tagged `image` (already pulled)."""
        started = time.monotonic()
        plan = plan_recreate(old, old_image, image, self.cgroupns_default)
        old_id = str(old["Id"])
        labels: Mapping[str, str] = (old.get("Config") or {}).get("Labels") or {}
        probe = Probe.from_labels(labels)
        was_running = bool((old.get("State") or {}).get("Running"))
        backup = plan.name + BACKUP_SUFFIX
        if self._find(backup) is not None:
            raise UpdateFailed(f"{plan.name}: a container named {backup} is in the way")
        hooks: list[HookResult] = []
        if self.options.lifecycle_hooks and was_running:
            result = self._hook(old_id, labels, "pre-update")
            if result is not None:
                hooks.append(result)
                if result.exit_code == EX_TEMPFAIL:
                    return Applied(
                        "skipped", "pre-update hook asked to skip (exit 75)", hooks=tuple(hooks)
                    )
        entry = Entry(
            old_id=old_id,
            name=plan.name,
            backup_name=backup,
            image=plan.image,
            old_image_id=str(old.get("Image") or ""),
            new_image_id=new_image_id,
            was_running=was_running,
            plan=plan.to_json(),
            started=_now(),
        )
        self._step(entry)
        try:
            if was_running:
                self._stop(old_id, labels)
            entry = entry.at("stopped")
            self._step(entry)
            self.client.rename(old_id, backup)
            entry = entry.at("renamed")
            self._step(entry)
            new_id = self._create(plan)
            entry = entry.at("created", new_id=new_id)
            self._step(entry)
            got = str(self.client.inspect_container(new_id).get("Image") or "")
            if got != new_image_id:
                raise UpdateFailed(f"{plan.name}: tag {plan.image} moved during the update")
            if not was_running and not self.options.revive_stopped:
                entry = entry.at("healthy", details={"health": "not started (was stopped)"})
                self._step(entry)
                return self._commit(entry, None, started, hooks)
            self.client.start(new_id)
            entry = entry.at("started")
            self._step(entry)
            timeout = _label_float(
                labels, "dockward.update.health-timeout", self.options.health_timeout
            )
            health = wait_healthy(
                self.client,
                new_id,
                timeout=timeout,
                min_uptime=self.options.min_uptime,
                probe=probe,
            )
        except BaseException as exc:
            reason = str(exc) if isinstance(exc, DockwardError) else _api_reason(exc)
            if not isinstance(exc, Exception):
                self._rollback(entry)
                raise
            restored = self._rollback(entry, probe, self.options.health_timeout)
            return Applied(
                "failed",
                f"{reason}; {restored}",
                entry.new_id,
                elapsed=time.monotonic() - started,
                hooks=tuple(hooks),
            )
        if not health.ok:
            restored = self._rollback(entry, probe, timeout)
            return Applied(
                "rolled-back",
                f"health gate failed: {health.reason}; {restored}",
                new_id,
                health,
                time.monotonic() - started,
                tuple(hooks),
            )
        entry = entry.at("healthy", details={"health": health.reason})
        self._step(entry)
        return self._commit(entry, health, started, hooks)

    def _commit(
        self, entry: Entry, health: HealthResult | None, started: float, hooks: list[HookResult]
    ) -> Applied:
        if self.options.lifecycle_hooks and health is not None:
            labels = self.client.inspect_container(entry.new_id)["Config"].get("Labels") or {}
            result = self._hook(entry.new_id, labels, "post-update")
            if result is not None:
                hooks.append(result)
        self._finish(entry)
        return Applied(
            "updated",
            health.reason if health else "created (not started)",
            entry.new_id,
            health,
            time.monotonic() - started,
            tuple(hooks),
        )

    def _finish(self, entry: Entry) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            if self.options.keep_old:
                # A unique name, so the next update of this container has its backup name free.
                kept = f"{entry.backup_name}-{entry.old_id[:12]}"
                if self.client.inspect_container(entry.old_id)["Name"].lstrip("/") != kept:
                    self.client.rename(entry.old_id, kept)
            else:
                self.client.remove_container(entry.old_id, force=True)
        self._maybe_crash("removed")
        self.journal.remove(entry)

    def _hook(self, cid: str, labels: Mapping[str, str], hook: str) -> HookResult | None:
        command, timeout = hook_command(labels, hook)
        if not command:
            return None
        try:
            return run_hook(self.client, cid, hook, command, timeout)
        except docker.errors.APIError as exc:
            return HookResult(hook, -1, _api_reason(exc))

    def _stop(self, cid: str, labels: Mapping[str, str]) -> None:
        sig = next((labels[k] for k in STOP_SIGNAL_LABELS if labels.get(k)), "")
        if not sig:
            self.client.stop(cid, timeout=self.options.stop_timeout)
            return
        self.client.kill(cid, signal=sig)
        deadline = time.monotonic() + self.options.stop_timeout
        while time.monotonic() < deadline:
            if not self.client.inspect_container(cid)["State"].get("Running"):
                return
            time.sleep(0.1)
        self.client.kill(cid, signal="SIGKILL")

    def _create(self, plan: CreatePlan) -> str:
        created = self.client.create_container_from_config(plan.body, name=plan.name)
        new_id = str(created["Id"])
        for endpoint in plan.extra_networks:
            self._connect(new_id, endpoint)
        return new_id

    def _connect(self, cid: str, endpoint: EndpointPlan) -> None:
        # Raw call: docker-py's helper cannot carry DriverOpts and mangles `target:alias` links.
        url = self.client._url("/networks/{0}/connect", endpoint.network)
        resp = self.client._post_json(
            url, data={"Container": cid, "EndpointConfig": endpoint.endpoint_config()}
        )
        self.client._raise_for_status(resp)

    def _find(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.inspect_container(name))
        except docker.errors.NotFound:
            return None

    def _rollback(
        self, entry: Entry, probe: Probe | None = None, timeout: float | None = None
    ) -> str:
        """Remove the replacement (if any) and put the old container back as it was; with a
        `probe` (a rollback during an update, not a recovery), wait until the restored container
        is healthy again. Returns what became of the old container, in words."""
        candidates = {entry.new_id} if entry.new_id else set()
        holder = self._find(entry.name)
        if holder is not None and holder["Id"] != entry.old_id:
            candidates.add(str(holder["Id"]))
        for cid in candidates:
            # v=False: anonymous volumes are shared with the old container.
            with contextlib.suppress(docker.errors.NotFound):
                self.client.remove_container(cid, force=True, v=False)
        old = self._find(entry.old_id)
        if old is None:
            self.journal.remove(entry)
            raise UpdateFailed(f"{entry.name}: the old container {entry.old_id[:12]} is gone")
        if old["Name"].lstrip("/") != entry.name:
            self.client.rename(entry.old_id, entry.name)
        if entry.was_running and not old["State"].get("Running"):
            self.client.start(entry.old_id)
        self.journal.remove(entry)
        if not entry.was_running:
            return "old container restored (it was not running)"
        if probe is None and timeout is None:
            return "old container restored"
        back = wait_healthy(
            self.client,
            entry.old_id,
            timeout=timeout or self.options.health_timeout,
            min_uptime=self.options.min_uptime,
            probe=probe,
        )
        if back.ok:
            return f"old container restored and healthy ({back.reason}, {back.elapsed:.1f}s)"
        return f"old container restored but NOT healthy: {back.reason}"

    def recover(self) -> list[Recovered]:
        """Finish or roll back what an interrupted run left in the journal."""
        out: list[Recovered] = []
        for entry in self.journal.pending():
            if entry.committed:
                self._finish(entry)
                out.append(
                    Recovered(
                        entry.name, "finished", f"new container {entry.new_id[:12]} was healthy"
                    )
                )
                continue
            try:
                self._rollback(entry)
            except UpdateFailed as exc:
                out.append(Recovered(entry.name, "lost", str(exc)))
                continue
            out.append(
                Recovered(
                    entry.name,
                    "rolled-back",
                    f"interrupted after step {entry.phase!r}; old container restored",
                )
            )
        return out


def _label_float(labels: Mapping[str, str], key: str, default: float) -> float:
    try:
        return max(1.0, float(labels[key])) if key in labels else default
    except ValueError:
        return default


def _api_reason(exc: BaseException) -> str:
    if isinstance(exc, docker.errors.APIError):
        return str(exc.explanation or exc)[:300]
    return f"{type(exc).__name__}: {exc}"[:300]
