"""Every `docker run`/`docker create` flag and every compose service key, accounted for.

Each is either modelled (it sets `ContainerSpec` fields, which the container rules judge
whatever the input) or irrelevant to security, with the reason. The `docker run` parser takes
its flag list from here, and a test compares both tables with the flags of the Docker CLI and the
service keys of the compose-spec schema, so a new flag or key cannot be dropped silently.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Setting:
    """How one flag or key reaches the rules: the spec fields it sets, or why it does not."""

    fields: tuple[str, ...] = ()
    irrelevant: str = ""
    takes_value: bool = True  # run flags only: a value follows (`--name x`), or a boolean
    short: str = ""  # run flags only: the one-letter form

    @property
    def modelled(self) -> bool:
        return bool(self.fields)


def _m(*fields: str, value: bool = True, short: str = "") -> Setting:
    return Setting(fields=fields, takes_value=value, short=short)


def _i(reason: str, value: bool = True, short: str = "") -> Setting:
    return Setting(irrelevant=reason, takes_value=value, short=short)


_CLIENT = "how the CLI attaches to or reports on the container; nothing the container gets"
_TIMING = "timing of the health probe; that a probe exists is judged (DW-C026)"
_DNS = "name resolution inside the container's own network namespace"
_IO = "an I/O throttle only lowers what the container may use"
_META = "metadata for people and tools; no access or privilege"
_NET = "addressing inside a user-defined network; the network mode itself is judged"
_LOG = "where the daemon sends the container's output"
_STOP = "how the container is stopped"
_WINDOWS = "Windows containers only"
_CPU_TUNE = "fine tuning under the CPU limit, which is judged (DW-C013)"

# Flags of `docker run`/`docker create` (docker/cli cli/command/container/opts.go, run.go,
# create.go), long name -> how it reaches the rules.
RUN_FLAGS: dict[str, Setting] = {
    "add-host": _m("extra_hosts"),
    "annotation": _i(
        "OCI annotations for the runtime: runc ignores them; another runtime is judged itself"
    ),
    "attach": _i(_CLIENT, short="a"),
    "blkio-weight": _i(_IO),
    "blkio-weight-device": _i(_IO),
    "cap-add": _m("cap_add"),
    "cap-drop": _m("cap_drop"),
    "cgroup-parent": _m("cgroup_parent"),
    "cgroupns": _m("cgroupns_mode"),
    "cidfile": _i("a file the CLI writes the container id to, on the client"),
    "cpu-count": _i(_WINDOWS),
    "cpu-percent": _i(_WINDOWS),
    "cpu-period": _i(_CPU_TUNE),
    "cpu-quota": _m("cpu_quota"),
    "cpu-rt-period": _i(_CPU_TUNE),
    "cpu-rt-runtime": _i(
        "a real-time budget; the daemon grants one only when started with --cpu-rt-runtime"
    ),
    "cpu-shares": _m("cpu_shares", short="c"),
    "cpus": _m("nano_cpus"),
    "cpuset-cpus": _m("cpuset_cpus"),
    "cpuset-mems": _i(_CPU_TUNE),
    "detach": _i(_CLIENT, value=False, short="d"),
    "detach-keys": _i(_CLIENT),
    "device": _m("devices"),
    "device-cgroup-rule": _m("device_cgroup_rules"),
    "device-read-bps": _i(_IO),
    "device-read-iops": _i(_IO),
    "device-write-bps": _i(_IO),
    "device-write-iops": _i(_IO),
    "disable-content-trust": _i(
        "a client-side pull check (deprecated); image provenance is the policy's signature check",
        value=False,
    ),
    "dns": _i(_DNS),
    "dns-opt": _i(_DNS),
    "dns-option": _i(_DNS),
    "dns-search": _i(_DNS),
    "domainname": _i(_DNS),
    "entrypoint": _m("entrypoint"),
    "env": _m("env", short="e"),
    "env-file": _i(
        "values read from a file at run time (where secrets belong); values on the command "
        "line are judged (DW-C030)"
    ),
    "expose": _i("documents a port; only published ports are reachable (judged)"),
    "gpus": _m("device_requests"),
    "group-add": _i(
        "supplementary groups inside the container; what they can reach on the host comes "
        "through mounts and devices, which are judged"
    ),
    "health-cmd": _m("healthcheck"),
    "health-interval": _i(_TIMING),
    "health-retries": _i(_TIMING),
    "health-start-interval": _i(_TIMING),
    "health-start-period": _i(_TIMING),
    "health-timeout": _i(_TIMING),
    "help": _i(_CLIENT, value=False),
    "hostname": _i("the name the container sees for itself", short="h"),
    "init": _i("runs an init process as PID 1 inside the container", value=False),
    "interactive": _i(_CLIENT, value=False, short="i"),
    "io-maxbandwidth": _i(_WINDOWS),
    "io-maxiops": _i(_WINDOWS),
    "ip": _m("static_addresses"),
    "ip6": _m("static_addresses"),
    "ipc": _m("ipc_mode"),
    "isolation": _i(_WINDOWS),
    "kernel-memory": _i("deprecated; ignored by current kernels and daemons"),
    "label": _m("labels", short="l"),
    "label-file": _i(_META),
    "link": _i("legacy links: name resolution and environment between containers"),
    "link-local-ip": _i(_NET),
    "log-driver": _i(_LOG),
    "log-opt": _i(_LOG),
    "mac-address": _i(_NET),
    "memory": _m("memory", short="m"),
    "memory-reservation": _i("a soft limit; the hard limit is judged (DW-C012)"),
    "memory-swap": _m("memory_swap"),
    "memory-swappiness": _i("how eagerly the container's pages are swapped"),
    "mount": _m("mounts"),
    "name": _m("name"),
    "net": _m("network_mode"),
    "net-alias": _i(_NET),
    "network": _m("network_mode"),
    "network-alias": _i(_NET),
    "no-healthcheck": _m("healthcheck", value=False),
    "oom-kill-disable": _m("oom_kill_disable", value=False),
    "oom-score-adj": _m("oom_score_adj"),
    "pid": _m("pid_mode"),
    "pids-limit": _m("pids_limit"),
    "platform": _i("which image variant is pulled"),
    "privileged": _m("privileged", value=False),
    "publish": _m("ports", short="p"),
    "publish-all": _m("publish_all", value=False, short="P"),
    "pull": _i("when the image is pulled"),
    "quiet": _i(_CLIENT, value=False, short="q"),
    "read-only": _m("read_only_rootfs", value=False),
    "restart": _m("restart"),
    "rm": _i("the container is removed when it exits", value=False),
    "runtime": _m("runtime"),
    "security-opt": _m("security", "unmasked_paths"),
    "shm-size": _i("size of /dev/shm, charged to the container's memory limit"),
    "sig-proxy": _i(_CLIENT, value=False),
    "stop-signal": _i(_STOP),
    "stop-timeout": _i(_STOP),
    "storage-opt": _i("size of the container's writable layer"),
    "sysctl": _m("sysctls"),
    "tmpfs": _m("mounts"),
    "tty": _i(_CLIENT, value=False, short="t"),
    "ulimit": _m("ulimits"),
    "use-api-socket": _m("mounts", value=False),
    "user": _m("user", short="u"),
    "userns": _m("userns_mode"),
    "uts": _m("uts_mode"),
    "volume": _m("mounts", short="v"),
    "volume-driver": _i(
        "the plugin that provides named volumes; what is mounted where is judged from the mounts"
    ),
    "volumes-from": _m("volumes_from"),
    "workdir": _i("the working directory inside the container", short="w"),
}

_BUILD = "how the image is built; the image itself is judged by `scan` and the Dockerfile by lint"
_ORDER = "start order and lifecycle of the project's services"

# Service keys of the compose-spec schema (compose-spec/compose-spec schema/compose-spec.json,
# definitions.service.properties) -> how each reaches the rules.
COMPOSE_KEYS: dict[str, Setting] = {
    "annotations": _i(
        "OCI annotations for the runtime: runc ignores them; another runtime is judged itself"
    ),
    "attach": _i("whether `docker compose up` shows the service's output"),
    "blkio_config": _i(_IO),
    "build": _i(_BUILD + " (build args: DW-K001)"),
    "cap_add": _m("cap_add"),
    "cap_drop": _m("cap_drop"),
    "cgroup": _m("cgroupns_mode"),
    "cgroup_parent": _m("cgroup_parent"),
    "command": _m("command"),
    "configs": _i("files the project provides read-only in the container (swarm configs)"),
    "container_name": _m("name"),
    "cpu_count": _i(_WINDOWS),
    "cpu_percent": _i(_WINDOWS),
    "cpu_period": _i(_CPU_TUNE),
    "cpu_quota": _m("cpu_quota"),
    "cpu_rt_period": _i(_CPU_TUNE),
    "cpu_rt_runtime": _i(
        "a real-time budget; the daemon grants one only when started with --cpu-rt-runtime"
    ),
    "cpu_shares": _m("cpu_shares"),
    "cpus": _m("nano_cpus"),
    "cpuset": _m("cpuset_cpus"),
    "credential_spec": _i(_WINDOWS),
    "depends_on": _i(_ORDER),
    "deploy": _m("memory", "nano_cpus", "pids_limit", "restart", "device_requests"),
    "develop": _i("`docker compose watch`: files synced during development"),
    "device_cgroup_rules": _m("device_cgroup_rules"),
    "devices": _m("devices"),
    "dns": _i(_DNS),
    "dns_opt": _i(_DNS),
    "dns_search": _i(_DNS),
    "domainname": _i(_DNS),
    "entrypoint": _m("entrypoint"),
    "env_file": _m("env"),
    "environment": _m("env"),
    "expose": _i("documents a port; only published ports are reachable (judged)"),
    "extends": _i("merged into the service before it is judged"),
    "external_links": _i("legacy links: name resolution between containers"),
    "extra_hosts": _m("extra_hosts"),
    "gpus": _m("device_requests"),
    "group_add": _i(
        "supplementary groups inside the container; what they can reach on the host comes "
        "through mounts and devices, which are judged"
    ),
    "healthcheck": _m("healthcheck"),
    "hostname": _i("the name the container sees for itself"),
    "image": _m("image"),
    "init": _i("runs an init process as PID 1 inside the container"),
    "ipc": _m("ipc_mode"),
    "isolation": _i(_WINDOWS),
    "label_file": _i(_META),
    "labels": _m("labels"),
    "links": _i("legacy links: name resolution and environment between containers"),
    "logging": _i(_LOG),
    "mac_address": _i(_NET),
    "mem_limit": _m("memory"),
    "mem_reservation": _i("a soft limit; the hard limit is judged (DW-C012)"),
    "mem_swappiness": _i("how eagerly the container's pages are swapped"),
    "memswap_limit": _m("memory_swap"),
    "models": _i("AI models the project provides to the service through an endpoint"),
    "network_mode": _m("network_mode"),
    "networks": _m("static_addresses"),
    "oom_kill_disable": _m("oom_kill_disable"),
    "oom_score_adj": _m("oom_score_adj"),
    "pid": _m("pid_mode"),
    "pids_limit": _m("pids_limit"),
    "platform": _i("which image variant is pulled"),
    "ports": _m("ports"),
    "post_start": _i("commands run inside the container (with its own privileges)"),
    "pre_stop": _i("commands run inside the container (with its own privileges)"),
    "privileged": _m("privileged"),
    "profiles": _i("which services `docker compose up` starts"),
    "provider": _i("a service provided by a plugin instead of a container"),
    "pull_policy": _i("when the image is pulled"),
    "pull_refresh_after": _i("when the image is pulled again"),
    "read_only": _m("read_only_rootfs"),
    "restart": _m("restart"),
    "runtime": _m("runtime"),
    "scale": _i("how many replicas run"),
    "secrets": _m("mounts"),
    "security_opt": _m("security", "unmasked_paths"),
    "shm_size": _i("size of /dev/shm, charged to the container's memory limit"),
    "stdin_open": _i("whether stdin stays open"),
    "stop_grace_period": _i(_STOP),
    "stop_signal": _i(_STOP),
    "storage_opt": _i("size of the container's writable layer"),
    "sysctls": _m("sysctls"),
    "tmpfs": _m("mounts"),
    "tty": _i("whether a terminal is allocated"),
    "ulimits": _m("ulimits"),
    "use_api_socket": _m("mounts"),
    "user": _m("user"),
    "userns_mode": _m("userns_mode"),
    "uts": _m("uts_mode"),
    "volumes": _m("mounts"),
    "volumes_from": _m("volumes_from"),
    "working_dir": _i("the working directory inside the container"),
}

# The engine socket as `docker run --use-api-socket` and compose `use_api_socket: true` mount it
# (docker/cli create.go: a bind of /var/run/docker.sock at the same path, read-write, plus the
# caller's registry credentials copied into the container).
API_SOCKET = "/var/run/docker.sock"

VALUE_FLAGS = frozenset(name for name, s in RUN_FLAGS.items() if s.takes_value)
BOOL_FLAGS = frozenset(name for name, s in RUN_FLAGS.items() if not s.takes_value)
SHORT_FLAGS = {s.short: name for name, s in RUN_FLAGS.items() if s.short}

# Where a spec field is usually written, when several compose keys or run flags set it.
_USUAL_KEY = {"mounts": "volumes", "env": "environment", "network_mode": "network_mode"}
_USUAL_FLAG = {"mounts": "volume", "network_mode": "network"}


def _for_fields(
    table: dict[str, Setting], fields: tuple[str, ...], usual: dict[str, str]
) -> tuple[str, ...]:
    # Per field, in the rule's order: the usual key, then keys that set only that field, then
    # keys that set it among others (`deploy`).
    out: list[str] = []
    for field in fields:
        names = [n for n, s in table.items() if field in s.fields]
        names.sort(key=lambda n: (n != usual.get(field), len(table[n].fields)))
        out += [n for n in names if n not in out]
    return tuple(out)


@functools.cache
def compose_keys_for(fields: tuple[str, ...]) -> tuple[str, ...]:
    """The compose service keys that set `fields` (a rule's `fields`), most telling first."""
    return _for_fields(COMPOSE_KEYS, fields, _USUAL_KEY)


@functools.cache
def run_flags_for(fields: tuple[str, ...]) -> tuple[str, ...]:
    """The `docker run` flags (long names) that set `fields`, most telling first."""
    return _for_fields(RUN_FLAGS, fields, _USUAL_FLAG)
