"""One Compose service (already merged and interpolated) -> ContainerSpec."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from dockward.errors import InputError
from dockward.model.container import (
    ContainerSpec,
    Device,
    Healthcheck,
    Mount,
    PortBinding,
    RestartPolicy,
    SecurityOptions,
    StaticAddress,
    Ulimit,
    normalise_capability,
)
from dockward.model.finding import Location
from dockward.specs.addresses import pools_of, static_address
from dockward.specs.tables import API_SOCKET
from dockward.specs.values import (
    as_bool,
    as_int,
    as_list,
    host_path,
    kv_pairs,
    parse_bytes,
    parse_device,
    parse_long_volume,
    parse_restart,
    parse_short_port,
    parse_short_volume,
    port_range,
    unmasks_system_paths,
)


def _command(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    try:
        return tuple(shlex.split(str(value)))
    except ValueError as exc:
        raise InputError(f"{what}: {exc}") from exc


def _ports(value: Any, what: str) -> tuple[PortBinding, ...]:
    out: list[PortBinding] = []
    for item in as_list(value, what):
        if isinstance(item, dict):
            proto = str(item.get("protocol") or "tcp")
            published = str(item.get("published") or "")
            cports = port_range(str(item.get("target") or ""), what)
            hports = port_range(published, what)
            for i, cport in enumerate(cports):
                hport = hports[i] if i < len(hports) else (hports[0] if hports else 0)
                out.append(PortBinding(cport, proto, str(item.get("host_ip") or ""), hport))
        else:
            out += parse_short_port(str(item), what)
    return tuple(out)


def _ulimits(value: Any, what: str) -> tuple[Ulimit, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise InputError(f"{what}: expected a mapping")
    out = []
    for name, lim in value.items():
        if isinstance(lim, dict):
            out.append(
                Ulimit(str(name), as_int(lim.get("soft"), what), as_int(lim.get("hard"), what))
            )
        else:
            n = as_int(lim, what)
            out.append(Ulimit(str(name), n, n))
    return tuple(out)


def _devices(value: Any, what: str) -> tuple[Device, ...]:
    out = []
    for item in as_list(value, what):
        if isinstance(item, dict):
            src = str(item.get("source") or "")
            out.append(
                Device(src, str(item.get("target") or src), str(item.get("permissions") or "rwm"))
            )
        else:
            out.append(parse_device(str(item)))
    return tuple(out)


def _restart(service: Mapping[str, Any], deploy: Mapping[str, Any], what: str) -> RestartPolicy:
    if service.get("restart") is not None:
        return parse_restart(str(service["restart"]))
    policy = deploy.get("restart_policy")
    if isinstance(policy, dict):
        condition = str(policy.get("condition") or "any")
        attempts = as_int(policy.get("max_attempts") or 0, what)
        name = {"any": "always", "on-failure": "on-failure", "none": "no"}.get(condition, condition)
        if name == "always" and attempts:
            name = "on-failure"
        return RestartPolicy(name, attempts)
    return RestartPolicy()


def _healthcheck(value: Any, what: str) -> Healthcheck | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError(f"{what}: expected a mapping")
    if as_bool(value.get("disable", False), what):
        return Healthcheck(("NONE",))
    test = value.get("test")
    if test is None:
        return None
    if isinstance(test, list):
        return Healthcheck(tuple(str(t) for t in test))
    return Healthcheck(("CMD-SHELL", str(test)))


def _secret_mounts(
    value: Any, top_secrets: Mapping[str, Any], project_dir: str, what: str
) -> tuple[Mount, ...]:
    # File-backed secrets are bind mounts of that file (outside swarm), so the mount rules see them.
    out = []
    for item in as_list(value, what):
        if isinstance(item, dict):
            name = str(item.get("source") or "")
            target = str(item.get("target") or name)
        else:
            name = target = str(item)
        decl = top_secrets.get(name)
        if isinstance(decl, dict) and decl.get("file"):
            dest = target if target.startswith("/") else f"/run/secrets/{target}"
            out.append(Mount("bind", host_path(str(decl["file"]), project_dir), dest, True))
    return tuple(out)


def _limits(deploy: Mapping[str, Any]) -> Mapping[str, Any]:
    resources = deploy.get("resources")
    if isinstance(resources, dict) and isinstance(resources.get("limits"), dict):
        limits: Mapping[str, Any] = resources["limits"]
        return limits
    return {}


def _nano_cpus(value: Any, what: str) -> int:
    if value is None or value == "":
        return 0
    try:
        return int(float(str(value)) * 1e9)
    except ValueError as exc:
        raise InputError(f"{what}: invalid cpus {value!r}") from exc


def _device_request(item: Any, what: str) -> str:
    if not isinstance(item, dict):
        raise InputError(f"{what}: expected a mapping")
    count = str(item.get("count", "all" if "device_ids" not in item else 0))
    caps = ",".join(str(c) for c in as_list(item.get("capabilities"), what)) or "gpu"
    parts = [f"driver={item.get('driver') or ''}", f"count={count}"]
    ids = [str(i) for i in as_list(item.get("device_ids"), what)]
    if ids:
        parts.append("device=" + ",".join(ids))
    parts.append(f"capabilities={caps}")
    return ",".join(parts)


def _device_requests(
    service: Mapping[str, Any], deploy: Mapping[str, Any], what: str
) -> tuple[str, ...]:
    """`gpus:` (all, or device requests) and `deploy.resources.reservations.devices`."""
    out: list[str] = []
    gpus = service.get("gpus")
    if gpus == "all":
        out.append("driver=,count=all,capabilities=gpu")
    else:
        out += [_device_request(g, f"{what}.gpus") for g in as_list(gpus, f"{what}.gpus")]
    resources = deploy.get("resources")
    reservations = resources.get("reservations") if isinstance(resources, dict) else None
    if isinstance(reservations, dict):
        where = f"{what}.deploy.resources.reservations.devices"
        out += [_device_request(d, where) for d in as_list(reservations.get("devices"), where)]
    return tuple(out)


def _extra_hosts(value: Any, what: str) -> tuple[str, ...]:
    """`extra_hosts`: `name:address`/`name=address` lines or a mapping (a name may map to a
    list of addresses) -> `name:address` lines."""
    if isinstance(value, dict):
        return tuple(
            f"{name}:{addr}"
            for name, addrs in value.items()
            for addr in (addrs if isinstance(addrs, list) else [addrs])
        )
    out = []
    for item in as_list(value, what):
        text = str(item)
        name, eq, addr = text.partition("=")
        out.append(f"{name}:{addr}" if eq else text)
    return tuple(out)


def _static_addresses(value: Any, networks: Mapping[str, Any] | None) -> tuple[StaticAddress, ...]:
    """`networks: {NAME: {ipv4_address, ipv6_address}}` of a service, with each network's pools
    from the top-level `networks` section (an external network's are not known here; one the
    file does not define has none: the engine refuses a fixed address there)."""
    if not isinstance(value, Mapping):
        return ()  # the list form fixes no address
    pools = None
    if networks is not None:
        pools = {
            str(k): pools_of(v.get("ipam"))
            for k, v in ((k, v if isinstance(v, Mapping) else {}) for k, v in networks.items())
            if v.get("external") in (None, False, "false")  # `external: {name: x}` is external
        }
        pools.update({str(k): () for k in value if str(k) not in networks})
    out = []
    for net, opts in value.items():
        if not isinstance(opts, Mapping):
            continue
        for key in ("ipv4_address", "ipv6_address"):
            if opts.get(key):
                out.append(static_address(str(net), str(opts[key]), pools))
    return tuple(out)


def service_to_spec(
    name: str,
    service: Mapping[str, Any],
    *,
    project_dir: str = ".",
    source: Location | None = None,
    volumes: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    env_files: Mapping[str, str] | None = None,
    networks: Mapping[str, Any] | None = None,
) -> ContainerSpec:
    """Build the ContainerSpec of one service. `volumes`/`secrets` are the top-level sections
    (to see through named volumes and file secrets); `env_files` the already-read env_file
    values (lowest precedence under `environment`); `networks` the top-level section (the
    address ranges beside fixed addresses; None: not known)."""
    if not isinstance(service, Mapping):
        raise InputError(f"service {name}: expected a mapping")
    what = f"services.{name}"
    named = {str(k): (v if isinstance(v, dict) else {}) for k, v in (volumes or {}).items()}
    deploy_opts = service.get("deploy")
    deploy: Mapping[str, Any] = deploy_opts if isinstance(deploy_opts, dict) else {}
    limits = _limits(deploy)
    mounts: list[Mount] = []
    for i, item in enumerate(as_list(service.get("volumes"), f"{what}.volumes")):
        where = f"{what}.volumes[{i}]"
        if isinstance(item, dict):
            mounts.append(parse_long_volume(item, project_dir, named, where))
        else:
            mounts.append(parse_short_volume(str(item), project_dir, named))
    for item in as_list(service.get("tmpfs"), f"{what}.tmpfs"):
        target, _, opts = str(item).partition(":")
        mounts.append(Mount("tmpfs", "", target, "ro" in opts.split(",")))
    mounts += _secret_mounts(service.get("secrets"), secrets or {}, project_dir, f"{what}.secrets")
    if as_bool(service.get("use_api_socket", False), f"{what}.use_api_socket"):
        mounts.append(Mount("bind", API_SOCKET, API_SOCKET))
    security_opts = [str(o) for o in as_list(service.get("security_opt"), f"{what}.security_opt")]
    env: dict[str, str | None] = dict(env_files or {})
    env.update(kv_pairs(service.get("environment"), f"{what}.environment"))
    memory = parse_bytes(service.get("mem_limit"), f"{what}.mem_limit") or parse_bytes(
        limits.get("memory"), f"{what}.deploy.resources.limits.memory"
    )
    pids = service.get("pids_limit", limits.get("pids"))
    user = service.get("user")
    return ContainerSpec(
        name=str(service.get("container_name") or name),
        image=str(service.get("image") or ""),
        privileged=as_bool(service.get("privileged", False), f"{what}.privileged"),
        cap_add=tuple(
            normalise_capability(str(c)) for c in as_list(service.get("cap_add"), f"{what}.cap_add")
        ),
        cap_drop=tuple(
            normalise_capability(str(c))
            for c in as_list(service.get("cap_drop"), f"{what}.cap_drop")
        ),
        user="" if user is None else str(user),
        mounts=tuple(mounts),
        network_mode=str(service.get("network_mode") or ""),
        static_addresses=_static_addresses(service.get("networks"), networks),
        pid_mode=str(service.get("pid") or ""),
        ipc_mode=str(service.get("ipc") or ""),
        uts_mode=str(service.get("uts") or ""),
        userns_mode=str(service.get("userns_mode") or ""),
        cgroupns_mode=str(service.get("cgroup") or ""),
        cgroup_parent=str(service.get("cgroup_parent") or ""),
        security=SecurityOptions.parse(security_opts),
        unmasked_paths=unmasks_system_paths(security_opts),
        read_only_rootfs=as_bool(service.get("read_only", False), f"{what}.read_only"),
        memory=memory,
        memory_swap=parse_bytes(service.get("memswap_limit"), f"{what}.memswap_limit"),
        cpu_shares=as_int(service.get("cpu_shares") or 0, f"{what}.cpu_shares"),
        nano_cpus=_nano_cpus(service.get("cpus", limits.get("cpus")), f"{what}.cpus"),
        cpu_quota=as_int(service.get("cpu_quota") or 0, f"{what}.cpu_quota"),
        cpuset_cpus=str(service.get("cpuset") or ""),
        pids_limit=None if pids is None else as_int(pids, f"{what}.pids_limit"),
        ulimits=_ulimits(service.get("ulimits"), f"{what}.ulimits"),
        devices=_devices(service.get("devices"), f"{what}.devices"),
        device_cgroup_rules=tuple(
            str(r)
            for r in as_list(service.get("device_cgroup_rules"), f"{what}.device_cgroup_rules")
        ),
        ports=_ports(service.get("ports"), f"{what}.ports"),
        extra_hosts=_extra_hosts(service.get("extra_hosts"), f"{what}.extra_hosts"),
        volumes_from=tuple(
            str(v) for v in as_list(service.get("volumes_from"), f"{what}.volumes_from")
        ),
        oom_kill_disable=as_bool(
            service.get("oom_kill_disable", False), f"{what}.oom_kill_disable"
        ),
        oom_score_adj=as_int(service.get("oom_score_adj") or 0, f"{what}.oom_score_adj"),
        device_requests=_device_requests(service, deploy, what),
        runtime=str(service.get("runtime") or ""),
        restart=_restart(service, deploy, f"{what}.restart"),
        healthcheck=_healthcheck(service.get("healthcheck"), f"{what}.healthcheck"),
        env=tuple(k if v is None else f"{k}={v}" for k, v in env.items()),
        labels={k: v or "" for k, v in kv_pairs(service.get("labels"), f"{what}.labels").items()},
        sysctls={
            k: v or "" for k, v in kv_pairs(service.get("sysctls"), f"{what}.sysctls").items()
        },
        entrypoint=_command(service.get("entrypoint"), f"{what}.entrypoint"),
        command=_command(service.get("command"), f"{what}.command"),
        source=source,
        origin="compose",
    )
