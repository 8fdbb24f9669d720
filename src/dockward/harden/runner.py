"""Run a workload in a throw-away container, bounded in time, and always clean it up.

A seccomp profile that denies what `runc init` needs can hang the container's start, and then
`docker rm -f` hangs too; so every engine call here has a deadline, and cleanup first kills the
processes left in the container's own cgroup (only those) before removing it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dockward.errors import DockwardError
from dockward.model.container import Mount

T = TypeVar("T")
LABEL = "dockward.harden"


class RunTimeout(DockwardError):
    """An engine call under a generated profile did not finish in time."""


@dataclass(frozen=True, slots=True)
class Workload:
    """What to run and how to tell that it works."""

    image: str
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    user: str = ""
    env: tuple[str, ...] = ()
    probe: tuple[str, ...] = ()  # run inside the container; must exit 0
    duration: float = 2.0  # seconds to observe a service before probing
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    workdir: str = ""
    network: str = "none"  # learning runs need no network unless the workload does
    # As deployed (compose service or container inspect): every trial starts from these.
    cap_add: tuple[str, ...] = ()
    sysctls: Mapping[str, str] = field(default_factory=dict)
    devices: tuple[str, ...] = ()  # "host:container:perms"
    # Binds as deployed; volumes become fresh anonymous volumes of each trial (populated from
    # the image like a new named volume), so a trial never writes into the deployed data.
    mounts: tuple[Mount, ...] = ()
    group_add: tuple[str, ...] = ()  # supplementary groups (e.g. the engine socket's group)
    pid_mode: str = ""  # "host": the host's pid namespace (a monitor reading host /proc)


@dataclass(frozen=True, slots=True)
class Settings:
    """The security settings a run is made under (None/empty: the engine default)."""

    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    seccomp: str | None = None  # profile JSON text, or "unconfined"
    no_new_privileges: bool = False
    read_only: bool = False
    user: str | None = None  # overrides the workload's user
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    memory: int = 0
    pids_limit: int = 0
    nano_cpus: int = 0

    def security_opt(self) -> list[str]:
        opts: list[str] = []
        if self.seccomp is not None:
            opts.append(f"seccomp={self.seccomp}")
        if self.no_new_privileges:
            opts.append("no-new-privileges:true")
        return opts


DEFAULT_SETTINGS = Settings()


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run went: `ok` when the workload did what it does without the settings."""

    ok: bool
    reason: str
    exit_code: int | None = None  # None: still running when judged
    probe_code: int | None = None
    probe_output: str = ""
    logs: str = ""
    container_id: str = ""


def bounded(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run one engine call with a deadline (the SDK's socket timeout does not cover a hung runc)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fn).result(timeout=timeout)
    except concurrent.futures.TimeoutError as exc:
        raise RunTimeout(f"{what} did not finish within {timeout:.0f}s") from exc
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def container_pids(container_id: str, proc: str = "/proc") -> list[int]:
    """Host pids whose cgroup names this container (runc init included)."""
    pids: list[int] = []
    if len(container_id) < 12:
        return pids
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(f"{proc}/{entry}/cgroup") as fh:
                if container_id in fh.read():
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def kill_container_processes(container_id: str) -> int:
    killed = 0
    for pid in container_pids(container_id):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed


def remove_container(client: Any, container_id: str, timeout: float = 20) -> None:
    """Force-remove; when the engine hangs on it, kill what is left in the cgroup and retry."""
    for attempt in range(3):
        try:
            bounded(
                lambda: client.remove_container(container_id, force=True, v=True),
                timeout,
                "removing the container",
            )
            return
        except RunTimeout:
            kill_container_processes(container_id)
        except Exception as exc:
            if "No such container" in str(exc) or "404" in str(exc):
                return
            if "removal of container" in str(exc) and "already in progress" in str(exc):
                time.sleep(0.5 * (attempt + 1))
                continue
            kill_container_processes(container_id)
    with contextlib.suppress(Exception):
        client.remove_container(container_id, force=True, v=True)


def remove_stale(client: Any, prefix: str) -> None:
    """Remove containers left by an earlier run with this label value."""
    for c in client.containers(all=True, filters={"label": f"{LABEL}={prefix}"}):
        remove_container(client, c["Id"])


def engine_mounts(mounts: tuple[Mount, ...]) -> list[dict[str, Any]]:
    """HostConfig.Mounts of the deployed binds and (anonymous) volumes; tmpfs go elsewhere."""
    out: list[dict[str, Any]] = []
    for m in mounts:
        if m.type == "bind":
            out.append(
                {"Type": "bind", "Source": m.source, "Target": m.target, "ReadOnly": m.read_only}
            )
        elif m.type == "volume":
            out.append({"Type": "volume", "Target": m.target, "ReadOnly": m.read_only})
    return out


@contextlib.contextmanager
def started(
    client: Any,
    workload: Workload,
    settings: Settings,
    *,
    prefix: str = "dockward-harden",
    labels: Mapping[str, str] | None = None,
    start_timeout: float = 20,
) -> Iterator[str]:
    """A started container under `settings`; removed (forcefully if need be) on exit."""
    tmpfs = {**workload.tmpfs, **settings.tmpfs}
    host_config = client.create_host_config(
        cap_add=list(settings.cap_add) or None,
        cap_drop=list(settings.cap_drop) or None,
        security_opt=settings.security_opt() or None,
        read_only=settings.read_only,
        tmpfs=dict(tmpfs) or None,
        mem_limit=settings.memory or None,
        pids_limit=settings.pids_limit or None,
        nano_cpus=settings.nano_cpus or None,
        network_mode=workload.network or None,
        sysctls=dict(workload.sysctls) or None,
        devices=list(workload.devices) or None,
        mounts=engine_mounts(workload.mounts) or None,
        group_add=list(workload.group_add) or None,
        pid_mode=workload.pid_mode or None,
    )
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    all_labels = {LABEL: prefix, **(labels or {})}
    try:
        created = bounded(
            lambda: client.create_container(
                workload.image,
                command=list(workload.command) or None,
                entrypoint=list(workload.entrypoint) if workload.entrypoint is not None else None,
                user=settings.user if settings.user is not None else workload.user,
                environment=list(workload.env) or None,
                working_dir=workload.workdir or None,
                labels=all_labels,
                name=name,
                host_config=host_config,
            ),
            start_timeout,
            "creating the container",
        )
    except RunTimeout:
        raise
    except Exception as exc:
        raise DockwardError(
            f"cannot create a container of {workload.image}: {_short(exc)}"
        ) from exc
    cid = str(created["Id"])
    try:
        bounded(lambda: client.start(cid), start_timeout, "starting the container")
        yield cid
    finally:
        remove_container(client, cid)


def _short(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).strip().splitlines()[0][:300] if str(text).strip() else type(exc).__name__


def exec_in(client: Any, cid: str, cmd: tuple[str, ...], timeout: float = 20) -> tuple[int, str]:
    """Run `cmd` in the container; (exit code, combined output)."""

    def run() -> tuple[int, str]:
        ex = client.exec_create(cid, list(cmd), stdout=True, stderr=True)
        out = client.exec_start(ex["Id"], stream=False, demux=False) or b""
        code = client.exec_inspect(ex["Id"]).get("ExitCode")
        return (int(code) if code is not None else 126), out.decode("utf-8", "replace")

    return bounded(run, timeout, f"probe {' '.join(cmd)!r}")


def state(client: Any, cid: str) -> Mapping[str, Any]:
    data: Mapping[str, Any] = bounded(lambda: client.inspect_container(cid), 20, "inspect")
    return data.get("State") or {}


def logs(client: Any, cid: str, limit: int = 4000) -> str:
    try:
        raw = bounded(lambda: client.logs(cid, stdout=True, stderr=True, tail=50), 20, "logs")
    except Exception:
        return ""
    return bytes(raw).decode("utf-8", "replace")[-limit:]


def judge(
    client: Any, cid: str, workload: Workload, *, service: bool | None = None, stop: bool = False
) -> Outcome:
    """Observe a started container for the workload's duration, then probe it.

    A one-shot workload (it exits within the window) passes with exit code 0; a service passes
    when it is still running and the probe, if any, exits 0.
    """
    deadline = time.monotonic() + max(workload.duration, 0.2)
    st: Mapping[str, Any] = {}
    while time.monotonic() < deadline:
        st = state(client, cid)
        if not st.get("Running") and st.get("Status") in ("exited", "dead"):
            break
        time.sleep(0.1)
    st = state(client, cid)
    if not st.get("Running"):
        code = int(st.get("ExitCode") or 0)
        if service:
            return Outcome(
                False,
                f"exited with code {code} instead of running",
                code,
                logs=logs(client, cid),
                container_id=cid,
            )
        ok = code == 0
        return Outcome(
            ok,
            "exited 0" if ok else f"exited with code {code}",
            code,
            logs=logs(client, cid),
            container_id=cid,
        )
    if service is False:
        return Outcome(
            False,
            "still running after the observation window",
            None,
            logs=logs(client, cid),
            container_id=cid,
        )
    probe_code: int | None = None
    probe_out = ""
    if workload.probe:
        try:
            probe_code, probe_out = exec_in(client, cid, workload.probe)
        except RunTimeout as exc:
            return Outcome(False, str(exc), None, None, "", logs(client, cid), cid)
        if probe_code != 0:
            return Outcome(
                False,
                f"probe exited {probe_code}: {probe_out.strip()[:200]}",
                None,
                probe_code,
                probe_out,
                logs(client, cid),
                cid,
            )
    if stop:
        with contextlib.suppress(Exception):
            bounded(lambda: client.stop(cid, timeout=1), 15, "stopping the container")
    return Outcome(
        True,
        "running" + (", probe passed" if workload.probe else ""),
        None,
        probe_code,
        probe_out,
        logs(client, cid),
        cid,
    )


def run_once(
    client: Any,
    workload: Workload,
    settings: Settings,
    *,
    prefix: str = "dockward-harden",
    service: bool | None = None,
    start_timeout: float = 20,
) -> Outcome:
    """Start, judge, remove: a start that hangs or fails is a failed outcome, not an exception."""
    try:
        with started(client, workload, settings, prefix=prefix, start_timeout=start_timeout) as cid:
            return judge(client, cid, workload, service=service)
    except RunTimeout as exc:
        return Outcome(False, str(exc))
    except DockwardError:
        raise
    except Exception as exc:
        return Outcome(False, f"the engine refused: {_short(exc)}")


def profile_json(profile: Mapping[str, Any]) -> str:
    return json.dumps(profile, separators=(",", ":"))
