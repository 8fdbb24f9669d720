"""One update cycle: recover, select, check, then update one container at a time."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import docker.errors

from dockward import specs
from dockward.errors import DockwardError
from dockward.registry import RegistryClient
from dockward.update.apply import Recovered, UpdateFailed, Updater
from dockward.update.check import CheckResult, check_all
from dockward.update.cooldown import Cooldown, cooldown_for, waiting_text
from dockward.update.gates import Candidate, Gate, Verdict, run_gates
from dockward.update.hooks import hook_command, run_hook
from dockward.update.recreate import expected_spec, plan_recreate
from dockward.update.select import Managed, Selection, dependents_of, select
from dockward.update.signature import SignatureCheck

EventStatus = Literal[
    "current",
    "outdated",
    "waiting",
    "updated",
    "rolled-back",
    "refused",
    "failed",
    "skipped",
    "error",
]
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Event:
    """What happened to one container in a cycle; the report and notifications read these."""

    container: str
    status: EventStatus
    reason: str
    image: str = ""
    old_image_id: str = ""
    new_image_id: str = ""
    old_digest: str = ""
    new_digest: str = ""
    verdicts: tuple[Verdict, ...] = ()
    elapsed: float = 0.0
    fixed: tuple[str, ...] = ()
    check_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "status": self.status,
            "reason": self.reason,
            "image": self.image,
            "old_image_id": self.old_image_id,
            "new_image_id": self.new_image_id,
            "old_digest": self.old_digest,
            "new_digest": self.new_digest,
            "gates": [
                {"gate": v.gate, "allowed": v.allowed, "reasons": list(v.reasons)}
                for v in self.verdicts
            ],
            "fixed_vulnerabilities": list(self.fixed),
            "seconds": round(self.elapsed, 3),
        }


@dataclass(frozen=True, slots=True)
class CycleResult:
    events: tuple[Event, ...]
    recovered: tuple[Recovered, ...] = ()
    removed_images: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()
    check_seconds: float = 0.0
    api_version: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class CycleOptions:
    selection: Selection = field(default_factory=Selection)
    cleanup: bool = False
    no_pull: bool = False
    no_restart_dependents: bool = False
    workers: int = 16
    cooldown: float = 0.0  # seconds a new digest must have been seen before it is taken


def run_cycle(
    client: Any,
    registry: RegistryClient,
    updater: Updater,
    options: CycleOptions,
    gates: Sequence[Gate] = (),
    progress: Progress | None = None,
    cooldown: Cooldown | None = None,
    signature: SignatureCheck | None = None,
) -> CycleResult:
    say = progress or (lambda _m: None)
    recovered = tuple(updater.recover())
    for r in recovered:
        say(f"recovered {r.name}: {r.action} ({r.detail})")
    managed = select(client, options.selection)
    hooks = updater.options.lifecycle_hooks
    if hooks:
        _run_hooks(client, managed, "pre-check")
    t0 = time.monotonic()
    checks = check_all(client, registry, managed, workers=options.workers)
    check_seconds = time.monotonic() - t0
    say(f"checked {len(managed)} containers in {check_seconds:.2f}s")
    events: list[Event] = []
    removed: list[str] = []
    updated: set[str] = set()
    for check in checks:
        event = _handle(client, registry, updater, options, gates, check, say, cooldown, signature)
        events.append(event)
        if event.status == "updated":
            updated.add(event.container)
            if (
                options.cleanup
                and event.old_image_id
                and _remove_image_if_unused(client, event.old_image_id)
            ):
                removed.append(event.old_image_id)
    restarted: list[str] = []
    if not options.no_restart_dependents:
        for name in sorted(updated):
            for dep in dependents_of(name, managed):
                if dep not in updated and dep not in restarted:
                    try:
                        client.restart(dep, timeout=updater.options.stop_timeout)
                        restarted.append(dep)
                    except docker.errors.APIError:
                        continue
    if hooks:
        _run_hooks(client, select(client, options.selection), "post-check")
    if cooldown is not None:
        cooldown.save()
    version = str(getattr(client, "api_version", "") or "")
    return CycleResult(
        tuple(events), recovered, tuple(removed), tuple(restarted), check_seconds, version
    )


def _handle(
    client: Any,
    registry: RegistryClient,
    updater: Updater,
    options: CycleOptions,
    gates: Sequence[Gate],
    check: CheckResult,
    say: Progress,
    cooldown: Cooldown | None = None,
    signature: SignatureCheck | None = None,
) -> Event:
    m = check.container
    base = Event(
        m.name,
        "current",
        check.reason,
        str(check.ref or ""),
        check.local_image_id,
        "",
        check.local_digest,
        check.remote_digest,
    )
    if check.status != "outdated":
        status: EventStatus = check.status
        return _ev(base, status=status)
    if m.monitor_only or options.selection.monitor_only:
        return _ev(
            base,
            status="outdated",
            reason="newer image available (monitor only)",
            new_image_id=check.remote_image_id,
        )
    assert check.ref is not None
    wait = cooldown_for(m.labels, options.cooldown)
    if wait > 0 and cooldown is not None and check.remote_digest:
        left = cooldown.left(check.ref.name, check.remote_digest, wait)
        if left > 0:
            return _ev(
                base,
                status="waiting",
                reason=f"{waiting_text(left)} (cooldown {wait / 60:g} min for a new digest)",
                new_image_id=check.remote_image_id,
            )
    started = time.monotonic()
    if signature is not None and signature.keys_for(m.labels):
        # Before the pull: an unsigned image never reaches the host.
        refusals = signature.failures(check.ref, check.remote_digest, m.labels)
        verdict = Verdict("signature", not refusals, tuple(refusals))
        if refusals:
            return _ev(
                base,
                status="refused",
                reason="; ".join(f"signature: {r}" for r in refusals),
                new_image_id=check.remote_image_id,
                verdicts=(verdict,),
                elapsed=time.monotonic() - started,
            )
        base = _ev(base, verdicts=(verdict,))
    try:
        if not (m.no_pull or options.no_pull):
            say(f"{m.name}: pulling {check.ref}")
            _pull(client, registry, check)
        new_image = client.inspect_image(str(check.ref))
    except docker.errors.ImageNotFound:
        return _ev(base, status="skipped", reason="no-pull: the new image is not present locally")
    except (docker.errors.APIError, DockwardError) as exc:
        return _ev(base, status="error", reason=f"pull failed: {_reason(exc)}")
    new_id = str(new_image["Id"])
    if new_id == check.local_image_id:
        return _ev(base, status="current", reason="local tag already matches the container")
    base = _ev(base, new_image_id=new_id)
    try:
        # Inspected now, not at listing time: the container must be exactly what was checked.
        inspect = client.inspect_container(m.id)
        old_image = client.inspect_image(check.local_image_id) if check.local_image_id else {}
    except docker.errors.NotFound:
        return _ev(base, status="skipped", reason="container or its image vanished meanwhile")
    if inspect.get("Image") != check.local_image_id:
        return _ev(base, status="skipped", reason="container changed during the cycle")
    plan = plan_recreate(inspect, old_image, cgroupns_default=updater.cgroupns_default)
    candidate = Candidate(
        m.name,
        str(check.ref),
        old_image,
        new_image,
        specs.from_inspect(inspect),
        expected_spec(plan, inspect, new_image),
    )
    verdicts = base.verdicts + tuple(run_gates(gates, candidate))
    fixed = tuple(f for v in verdicts for f in v.details.get("fixed", ()))
    base = _ev(base, verdicts=verdicts, fixed=fixed)
    refused = [
        f"{v.gate}: {r}" for v in verdicts if not v.allowed for r in v.reasons or ("refused",)
    ]
    if refused:
        return _ev(
            base, status="refused", reason="; ".join(refused), elapsed=time.monotonic() - started
        )
    say(f"{m.name}: updating {check.local_image_id[:19]} -> {new_id[:19]}")
    try:
        applied = updater.apply(inspect, old_image, new_id)
    except UpdateFailed as exc:
        return _ev(base, status="failed", reason=str(exc), elapsed=time.monotonic() - started)
    return _ev(
        base, status=applied.status, reason=applied.reason, elapsed=time.monotonic() - started
    )


def _ev(event: Event, **changes: Any) -> Event:
    return replace(event, **changes)


def _pull(client: Any, registry: RegistryClient, check: CheckResult) -> None:
    assert check.ref is not None
    creds = registry.credentials_for(check.ref)
    repo = str(check.ref).rsplit(":", 1)[0]
    kwargs: dict[str, Any] = {"tag": check.ref.tag, "stream": True, "decode": True}
    if not creds.empty:
        kwargs["auth_config"] = creds.auth_config()
    for chunk in client.pull(repo, **kwargs):
        if isinstance(chunk, dict) and chunk.get("error"):
            raise DockwardError(str(chunk["error"]).strip()[:300])


def _remove_image_if_unused(client: Any, image_id: str) -> bool:
    if client.containers(all=True, filters={"ancestor": image_id}):
        return False
    try:
        client.remove_image(image_id)
    except docker.errors.APIError:
        return False  # still tagged elsewhere or in use: leave it
    return True


def _run_hooks(client: Any, managed: Sequence[Managed], hook: str) -> None:
    for m in managed:
        if not m.running:
            continue
        command, timeout = hook_command(m.labels, hook)
        if command:
            try:
                run_hook(client, m.id, hook, command, timeout)
            except docker.errors.APIError:
                continue


def _reason(exc: BaseException) -> str:
    if isinstance(exc, docker.errors.APIError):
        return str(exc.explanation or exc)[:300]
    return str(exc)[:300]


def summary(events: Sequence[Event]) -> Mapping[str, int]:
    out: dict[str, int] = {}
    for e in events:
        out[e.status] = out.get(e.status, 0) + 1
    return out
