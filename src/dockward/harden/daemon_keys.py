"""What dockerd 20.10 accepts in daemon.json, so a proposal never writes a file it refuses.

dockerd refuses to start when daemon.json has a key it does not know, a key that is also given
as a flag, a log option its default log driver does not accept, or a value of the wrong type.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from typing import Any

from dockward.engine.daemon_config import BOOLEAN_FLAGS

# The daemon.json keys of Engine 20.10 (`dockerd --help` names, plural for repeatable flags,
# plus the keys that exist only in the file).
KNOWN_KEYS = frozenset(
    [
        "allow-nondistributable-artifacts",
        "api-cors-header",
        "authorization-plugins",
        "bip",
        "bridge",
        "cgroup-parent",
        "cluster-advertise",
        "cluster-store",
        "cluster-store-opts",
        "containerd",
        "containerd-namespace",
        "containerd-plugins-namespace",
        "cpu-rt-period",
        "cpu-rt-runtime",
        "cri-containerd",
        "data-root",
        "debug",
        "default-address-pools",
        "default-cgroupns-mode",
        "default-gateway",
        "default-gateway-v6",
        "default-ipc-mode",
        "default-runtime",
        "default-shm-size",
        "default-ulimits",
        "dns",
        "dns-opts",
        "dns-search",
        "exec-opts",
        "exec-root",
        "experimental",
        "features",
        "fixed-cidr",
        "fixed-cidr-v6",
        "group",
        "host-gateway-ip",
        "hosts",
        "icc",
        "init",
        "init-path",
        "insecure-registries",
        "ip",
        "ip-forward",
        "ip-masq",
        "ip6tables",
        "iptables",
        "ipv6",
        "labels",
        "live-restore",
        "log-driver",
        "log-level",
        "log-opts",
        "max-concurrent-downloads",
        "max-concurrent-uploads",
        "max-download-attempts",
        "metrics-addr",
        "mtu",
        "network-control-plane-mtu",
        "no-new-privileges",
        "node-generic-resources",
        "oom-score-adjust",
        "pidfile",
        "raw-logs",
        "registry-mirrors",
        "rootless",
        "runtimes",
        "seccomp-profile",
        "selinux-enabled",
        "shutdown-timeout",
        "storage-driver",
        "storage-opts",
        "swarm-default-advertise-addr",
        "tls",
        "tlscacert",
        "tlscert",
        "tlskey",
        "tlsverify",
        "userland-proxy",
        "userland-proxy-path",
        "userns-remap",
        "builder",
        "debug-key",
    ]
)
BOOL_KEYS = BOOLEAN_FLAGS - {"validate"}  # --validate is command-line only
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")

_COMMON_OPTS = {"mode", "max-buffer-size", "labels", "labels-regex", "env", "env-regex", "tag"}
# Log options each built-in driver accepts (dockerd validates them against the default driver).
LOG_OPTS: Mapping[str, frozenset[str]] = {
    "json-file": frozenset(_COMMON_OPTS | {"max-size", "max-file", "compress"}),
    "local": frozenset({"mode", "max-buffer-size", "max-size", "max-file", "compress"}),
    "syslog": frozenset(
        _COMMON_OPTS
        | {
            "syslog-address",
            "syslog-facility",
            "syslog-tls-ca-cert",
            "syslog-tls-cert",
            "syslog-tls-key",
            "syslog-tls-skip-verify",
            "syslog-format",
        }
    ),
    "journald": frozenset(_COMMON_OPTS),
    "none": frozenset(),
}
CENTRAL_DRIVERS = ("syslog", "journald", "fluentd", "gelf", "awslogs", "splunk", "gcplogs")


def value_problems(config: Mapping[str, Any]) -> list[str]:
    """Values dockerd would refuse (only for the keys dockward writes or reads)."""
    out: list[str] = []
    for key in sorted(BOOL_KEYS & config.keys()):
        if not isinstance(config[key], bool):
            out.append(f"{key} must be true or false, not {json.dumps(config[key])}")
    level = config.get("log-level")
    if level is not None and level not in LOG_LEVELS:
        out.append(f"log-level must be one of {', '.join(LOG_LEVELS)}, not {json.dumps(level)}")
    ip = config.get("ip")
    if ip is not None:
        try:
            ipaddress.ip_address(str(ip))
        except ValueError:
            out.append(f"ip must be an IP address, not {json.dumps(ip)}")
    remap = config.get("userns-remap")
    if remap is not None and (not isinstance(remap, str) or remap.count(":") > 1):
        out.append(f"userns-remap must be 'default', 'user' or 'user:group', not {remap!r}")
    ulimits = config.get("default-ulimits")
    if ulimits is not None:
        if not isinstance(ulimits, dict):
            out.append("default-ulimits must be an object of {Name, Soft, Hard}")
        else:
            for name, u in ulimits.items():
                if not (
                    isinstance(u, dict)
                    and isinstance(u.get("Soft"), int)
                    and isinstance(u.get("Hard"), int)
                    and u["Soft"] <= u["Hard"]
                ):
                    out.append(f"default-ulimits.{name} needs integer Soft <= Hard")
    opts = config.get("log-opts")
    if opts is not None:
        if not isinstance(opts, dict) or not all(isinstance(v, str) for v in opts.values()):
            out.append("log-opts must be an object of strings")
        else:
            driver = str(config.get("log-driver") or "json-file")
            allowed = LOG_OPTS.get(driver)
            bad = sorted(k for k in opts if allowed is not None and k not in allowed)
            if bad:
                out.append(f"log-opts {', '.join(bad)} are not accepted by the {driver} driver")
    seccomp = config.get("seccomp-profile")
    if seccomp is not None and seccomp not in ("unconfined", "builtin"):
        out += seccomp_profile_problems(str(seccomp))
    return out


def seccomp_profile_problems(path: str) -> list[str]:
    if not os.path.isabs(path):
        return [f"seccomp-profile {path} must be an absolute path"]
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        return [f"seccomp-profile {path}: {exc.strerror}"]
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [f"seccomp-profile {path} is not valid JSON: {exc}"]
    if not isinstance(data, dict) or "defaultAction" not in data:
        return [f"seccomp-profile {path} has no defaultAction (not a seccomp profile)"]
    from dockward.errors import InputError
    from dockward.profiles.seccomp import parse_profile

    try:
        parse_profile(data)  # the same strict reading `profile seccomp` uses
    except InputError as exc:
        return [f"seccomp-profile {path}: {exc}"]
    return []
