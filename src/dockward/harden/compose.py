"""`harden compose.yaml:SERVICE`: the workload of one Compose service, its image built if need be.

The service is read with the linter's Compose loader (merge, interpolation, env files), so the
"before" spec is exactly what `dockward lint` judges; the image is the service's `image`, built
from its `build` section when it is not on the host (named like Compose v1: PROJECT_SERVICE).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from dockward.errors import DockwardError, InputError, UsageError
from dockward.harden.runner import Workload
from dockward.model.container import ContainerSpec

COMPOSE_SUFFIXES = (".yml", ".yaml")


def compose_target(text: str) -> tuple[str, str] | None:
    """`compose.yaml:web` or `compose.yaml` -> (path, service); None when `text` names no
    compose file (then it is a container)."""
    if os.path.isfile(text):
        return text, ""
    path, sep, service = text.rpartition(":")
    if sep and path and os.path.isfile(path):
        return path, service
    if text.endswith(COMPOSE_SUFFIXES) or path.endswith(COMPOSE_SUFFIXES):
        raise UsageError(f"no such compose file: {path or text}")
    return None


def _probe(spec: ContainerSpec, image_test: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The service's healthcheck command; without one, the image's (the container inherits it,
    as the engine does)."""
    hc = spec.healthcheck
    if hc is not None and hc.disabled:
        return ()
    test = hc.test if hc is not None else image_test
    if not test or test[0] == "NONE":
        return ()
    if test[0] == "CMD":
        return test[1:]
    if test[0] == "CMD-SHELL":
        return ("/bin/sh", "-c", " ".join(test[1:]))
    return test


def _image_healthcheck(client: Any, image: str) -> tuple[str, ...]:
    try:
        cfg = client.inspect_image(image).get("Config") or {}
    except Exception:
        return ()
    return tuple(str(a) for a in (cfg.get("Healthcheck") or {}).get("Test") or ())


def _build(
    client: Any,
    build: Any,
    project_dir: str,
    tag: str,
    say: Callable[[str], None],
) -> None:
    spec: Mapping[str, Any] = build if isinstance(build, dict) else {"context": build}
    context = str(spec.get("context") or ".")
    if "://" in context or context.startswith("git@"):
        raise UsageError(f"build context {context} is remote: build the image first")
    context = os.path.normpath(os.path.join(project_dir, context))
    if not os.path.isdir(context):
        raise InputError(f"build context {context} is not a directory")
    args = spec.get("args") or {}
    if isinstance(args, list):
        args = dict(str(a).partition("=")[::2] for a in args)
    say(f"building {tag} from {context}")
    try:
        for chunk in client.build(
            path=context,
            dockerfile=spec.get("dockerfile") or None,
            tag=tag,
            buildargs={str(k): str(v) for k, v in args.items() if v is not None} or None,
            target=spec.get("target") or None,
            rm=True,
            pull=False,
            decode=True,
        ):
            if "error" in chunk:
                raise DockwardError(f"building {tag} failed: {str(chunk['error']).strip()[:300]}")
    except DockwardError:
        raise
    except Exception as exc:
        raise DockwardError(f"building {tag} failed: {exc}") from exc


def _network_exists(client: Any, name: str) -> bool:
    try:
        client.inspect_network(name)
    except Exception:
        return False
    return True


def service_network(
    client: Any, project: str, config: Mapping[str, Any], say: Callable[[str], None]
) -> str:
    """The network a trial of this service joins: its `network_mode`, else its first network
    as Compose names it (PROJECT_NAME, or the name itself when it is external) when it exists
    on this host, else the default bridge (the service has a network; the trial gets one)."""
    mode = str(config.get("network_mode") or "")
    if mode and not mode.startswith("service:"):
        return mode
    networks = config.get("networks") or ["default"]
    first = str(next(iter(networks)))
    for name in (f"{project}_{first}", first):
        if _network_exists(client, name):
            return name
    say(f"network {first} of the service is not on this host: trials use the default bridge")
    return "bridge"


def _has_image(client: Any, image: str) -> bool:
    try:
        client.inspect_image(image)
    except Exception:
        return False
    return True


def workload_from_compose(
    client: Any,
    path: str,
    service: str,
    *,
    probe: tuple[str, ...] = (),
    duration: float = 2.0,
    network: str = "",
    progress: Callable[[str], None] | None = None,
) -> tuple[Workload, ContainerSpec]:
    """The workload of `service` (the only one when empty) and its spec as declared.

    Trials run as the service is deployed: its mounts and its network (`network` overrides).
    """
    from dockward.lint import load_compose

    say = progress or (lambda _m: None)
    project = load_compose([path])
    names = [s.name for s in project.services]
    if not service:
        if len(names) != 1:
            raise UsageError(f"{path} has services {', '.join(names)}: name one as {path}:NAME")
        service = names[0]
    svc = next((s for s in project.services if s.name == service), None)
    if svc is None:
        raise UsageError(f"{path} has no service {service!r} (it has {', '.join(names)})")
    spec = svc.spec
    image = spec.image or f"{project.name}_{svc.name}"
    if not _has_image(client, image):
        build = svc.config.get("build")
        if not build:
            raise DockwardError(f"image {image} is not on this host: pull or build it first")
        _build(client, build, os.path.dirname(os.path.abspath(path)), image, say)
    tmpfs = {m.target: "" for m in spec.mounts if m.type == "tmpfs"}
    raw_tmpfs = svc.config.get("tmpfs") or ()
    for entry in [raw_tmpfs] if isinstance(raw_tmpfs, str) else raw_tmpfs:
        target, _, options = str(entry).partition(":")
        if target in tmpfs:
            tmpfs[target] = options  # as deployed: size, mode, owner
    workdir = svc.config.get("working_dir")
    return (
        Workload(
            image=image,
            command=spec.command,
            entrypoint=spec.entrypoint or None,
            user=spec.user,
            env=spec.env,
            probe=probe or _probe(spec, _image_healthcheck(client, image)),
            duration=duration,
            tmpfs=tmpfs,
            workdir=str(workdir) if workdir else "",
            network=network or service_network(client, project.name, svc.config, say),
            mounts=tuple(m for m in spec.mounts if m.type in ("bind", "volume")),
            group_add=tuple(str(g) for g in svc.config.get("group_add") or ()),
            pid_mode=spec.pid_mode,
            cap_add=spec.cap_add,
            sysctls=dict(spec.sysctls),
            devices=tuple(
                f"{d.host_path}:{d.container_path}:{d.permissions}" for d in spec.devices
            ),
        ),
        spec.with_changes(image=image),
    )
