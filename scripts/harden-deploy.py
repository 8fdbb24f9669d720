#!/usr/bin/env python3
"""The security settings of deploy/compose.yaml and deploy/systemd/, from `dockward harden`.

    .venv/bin/python scripts/harden-deploy.py [--image dockward:local] [SERVICE...]
    .venv/bin/python scripts/harden-deploy.py --check [--compose deploy/compose.yaml]

Without --check: every deployed service (proxy, update, monitor, audit, scan) is hardened by
`dockward harden deploy/compose.yaml:SERVICE` on this host's engine, as it is deployed: its
image, command, user, groups, host namespaces, capabilities, mounts and network, with the
proxy running for the services that reach the engine through it. Only what a trial cannot share
with a running deployment is changed, in a copy of the file: the proxy's socket volume is a host
directory, the internal network gets a subnet no other network uses (the policy's reader CIDR
follows it). The proposal of each service is kept in deploy/harden/: SERVICE.json (the steps,
what was kept and why, the trial's measurements), SERVICE.override.yml (the compose fragment
harden emits), SERVICE-seccomp.json and SERVICE.apparmor (the learned profiles).

--check (no engine needed): each service's security settings in the compose file, and in its
systemd unit, are the ones its stored proposal names, except the settings the service waives
by label, `dockward.harden.waive: KEY,KEY` with `dockward.harden.waive.reason`. A difference
not waived, a waiver without a reason, or a waiver of a setting that does not differ is an
error (one line each, exit 1).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
HARDEN = DEPLOY / "harden"
SERVICES = ("proxy", "update", "monitor", "audit", "scan")
# Seconds each trial observes the service before its healthcheck probes it: the interpreter and
# the metrics server start first; audit and scan also complete their first cycle.
DURATION = {"proxy": 8.0, "update": 8.0, "monitor": 10.0, "audit": 20.0, "scan": 20.0}
# The probe of a trial: the image's healthcheck (`dockward health`), with two exceptions. The
# monitor stays healthy when its audit source falls back to the proc connector (no AUDIT_READ or
# AUDIT_CONTROL): its probe also requires the audit source, which the deployment asks for. Scan
# is healthy only with its vulnerability database (a trial's volume is empty): it must serve
# its metrics.
_AUDIT_RUNNING = '"source audit": {"detail": "running", "ok": true}'
PROBE = {
    "monitor": shlex.join(["sh", "-c", f"out=$(dockward health) && case \"$out\" in "
                           f"*'{_AUDIT_RUNNING}'*) exit 0;; esac; exit 1"]),
    "scan": shlex.join(["python3", "-c", "import urllib.request as u; "
                        "u.urlopen('http://127.0.0.1:9464/metrics', timeout=5)"]),
}  # fmt: skip
# The settings harden proposes, as compared (security_opt split into its two proposals).
KEYS = ("cap_drop", "cap_add", "no-new-privileges", "seccomp", "read_only", "tmpfs", "user",
        "mem_limit", "pids_limit", "cpus")  # fmt: skip
WAIVE = "dockward.harden.waive"
DEPLOYED_SUBNET = "172.30.99."


# ---------------------------------------------------------------------------------------------
# --check


def _bytes(value: Any) -> int:
    m = re.fullmatch(r"(\d+)([kmg]?)b?", str(value).strip().lower())
    if not m:
        raise ValueError(f"not a size: {value!r}")
    return int(m[1]) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m[2]]


def settings(svc: Mapping[str, Any], user: str = "") -> dict[str, Any]:
    """A compose service's (or a proposal's) settings in one comparable form per key."""
    opts = [str(o).replace("=", ":", 1) for o in svc.get("security_opt") or ()]
    seccomp = next((o.partition(":")[2] for o in opts if o.startswith("seccomp:")), "")
    tmpfs = svc.get("tmpfs") or ()
    return {
        "cap_drop": tuple(
            sorted(str(c).upper().removeprefix("CAP_") for c in svc.get("cap_drop") or ())
        ),
        "cap_add": tuple(
            sorted(str(c).upper().removeprefix("CAP_") for c in svc.get("cap_add") or ())
        ),
        "no-new-privileges": "no-new-privileges:true" in opts,
        "seccomp": os.path.basename(seccomp) if seccomp not in ("", "unconfined") else seccomp,
        "read_only": bool(svc.get("read_only")),
        # the mount points; their options (owner, size) may add to the proposal
        "tmpfs": tuple(
            sorted(str(x).partition(":")[0] for x in ([tmpfs] if isinstance(tmpfs, str) else tmpfs))
        ),
        "user": str(svc.get("user") or user),
        "mem_limit": _bytes(svc["mem_limit"]) if svc.get("mem_limit") else 0,
        "pids_limit": int(svc.get("pids_limit") or 0),
        "cpus": float(svc.get("cpus") or 0),
    }


def _unit(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """A unit's last value per key, and its waivers: `# dockward.harden.waive KEY: reason`."""
    values: dict[str, str] = {}
    waived: dict[str, str] = {}
    for line in path.read_text().replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.startswith(f"# {WAIVE} "):
            key, _, reason = line.removeprefix(f"# {WAIVE} ").partition(":")
            waived[key.strip()] = reason.strip()
        elif "=" in line and not line.startswith(("#", "[")):
            k, _, v = line.partition("=")
            values[k.strip()] = v.strip()
    return values, waived


def unit_settings(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The systemd counterparts of the compose settings, keyed by directive, and the waivers."""
    u, waived = _unit(path)
    quota = u.get("CPUQuota", "")
    memory = u.get("MemoryMax", "")
    return {
        "CapabilityBoundingSet": tuple(
            sorted(c.removeprefix("CAP_") for c in u.get("CapabilityBoundingSet", "").split())
        ),
        "NoNewPrivileges": u.get("NoNewPrivileges") == "yes",
        "ProtectSystem": u.get("ProtectSystem") == "strict",
        "MemoryMax": _bytes(memory.lower()) if memory else 0,
        "TasksMax": int(u.get("TasksMax", "0")),
        "CPUQuota": float(quota.rstrip("%")) / 100 if quota else 0.0,
    }, waived


def _show(key: str, value: Any) -> str:
    if key in ("mem_limit", "MemoryMax") and isinstance(value, int) and value:
        return f"{value / (1 << 20):g}m"
    return repr(value)


def check(compose: Path, harden_dir: Path, units: Path) -> list[str]:
    """Every difference between the deployment and the stored proposals not waived."""
    doc = yaml.safe_load(compose.read_text())  # anchors merged: each service complete
    errors: list[str] = []
    for name in SERVICES:
        svc = doc["services"].get(name)
        override, summary = harden_dir / f"{name}.override.yml", harden_dir / f"{name}.json"
        if svc is None or not override.exists() or not summary.exists():
            errors.append(f"{name}: no service in {compose.name} or no proposal in {harden_dir}")
            continue
        trial = json.loads(summary.read_text())["trial"]
        # harden names a user only when it changes it: otherwise the trial's user is proposed
        want = settings(yaml.safe_load(override.read_text())["services"][name], trial["user"])
        have = settings(svc)
        labels = svc.get("labels") or {}
        waived = {k.strip() for k in str(labels.get(WAIVE, "")).split(",") if k.strip()}
        if waived and not str(labels.get(f"{WAIVE}.reason", "")).strip():
            errors.append(f"{name}: {WAIVE} without {WAIVE}.reason")
        for key in KEYS:
            if have[key] != want[key] and key not in waived:
                errors.append(
                    f"{name}: {key} is {_show(key, have[key])}, harden proposes {_show(key, want[key])}"
                )
            elif have[key] == want[key] and key in waived:
                errors.append(f"{name}: {key} is waived but equals the proposal")
        if waived - set(KEYS):
            errors.append(
                f"{name}: {WAIVE} names no setting harden proposes: {sorted(waived - set(KEYS))}"
            )
        unit = units / f"dockward-{name}.service"
        if not unit.exists():
            continue
        got, unit_waived = unit_settings(unit)
        expected = {
            "CapabilityBoundingSet": want["cap_add"],
            "NoNewPrivileges": want["no-new-privileges"],
            "ProtectSystem": want["read_only"],
            # the limits are the deployed service's (the proposal's, or its waiver's)
            "MemoryMax": have["mem_limit"],
            "TasksMax": have["pids_limit"],
            "CPUQuota": have["cpus"],
        }
        for key, value in expected.items():
            if got[key] != value and not unit_waived.get(key):
                errors.append(
                    f"{unit.name}: {key} is {_show(key, got[key])}, the proposal says {_show(key, value)}"
                )
            elif got[key] == value and key in unit_waived:
                errors.append(f"{unit.name}: {key} is waived but equals the proposal")
    return errors


# ---------------------------------------------------------------------------------------------
# generation


def _docker(*args: str, check: bool = True) -> str:
    r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
    if check and r.returncode:
        raise SystemExit(f"docker {' '.join(args[:2])}: {r.stderr.strip()[-400:]}")
    return r.stdout


def _free_subnet() -> str:
    used = []
    for net in _docker("network", "ls", "-q").split():
        for cfg in json.loads(_docker("network", "inspect", net))[0]["IPAM"]["Config"] or ():
            if cfg.get("Subnet"):
                used.append(ipaddress.ip_network(cfg["Subnet"], strict=False))
    for third in range(200, 250):
        cand = ipaddress.ip_network(f"172.30.{third}.0/24")
        if not any(cand.overlaps(u) for u in used):
            return f"172.30.{third}."
    raise SystemExit("no free 172.30.x.0/24 subnet for the trial network")


def trial_files(work: Path, subnet: str) -> Path:
    """deploy/compose.yaml as deployed, but with its own subnet and the proxy's socket in
    host directories: `socket` for the running proxy, `socket-trial` for the proxy's trials."""
    text = (DEPLOY / "compose.yaml").read_text().replace(DEPLOYED_SUBNET, subnet)
    policy = (DEPLOY / "proxy-policy.yaml").read_text().replace(DEPLOYED_SUBNET, subnet)
    (work / "proxy-policy.yaml").write_text(policy)
    doc = yaml.safe_load(text)
    for name, svc in doc["services"].items():
        sock = work / ("socket-trial" if name == "proxy" else "socket")
        vols = []
        for v in svc.get("volumes") or ():
            v = v.replace("./proxy-policy.yaml", str(work / "proxy-policy.yaml"))
            vols.append(v.replace("proxy-socket:", f"{sock}:", 1))
        svc["volumes"] = vols
    (work / "run.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    # the running proxy's copy: its socket in the directory the other trials mount
    doc["services"]["proxy"]["volumes"] = [
        v.replace(str(work / "socket-trial"), str(work / "socket"))
        for v in doc["services"]["proxy"]["volumes"]
    ]
    (work / "up.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return work / "run.yaml"


def _stable(value: Any, work: Path, image: str) -> Any:
    if isinstance(value, str):
        return value.replace(str(work), "<trial>").replace(image, "${DOCKWARD_IMAGE}")
    if isinstance(value, list):
        return [_stable(v, work, image) for v in value]
    if isinstance(value, dict):
        return {k: _stable(v, work, image) for k, v in value.items()}
    return value


def generate(image: str, services: list[str]) -> int:
    dockward = str(REPO / ".venv/bin/dockward")
    HARDEN.mkdir(exist_ok=True)
    project = f"dw12bharden{os.getpid()}"
    work = Path(tempfile.gettempdir()) / project
    work.mkdir(mode=0o755)
    for d in ("socket", "socket-trial"):
        (work / d).mkdir(mode=0o750)
        os.chown(work / d, 10001, 10001)
    subnet = _free_subnet()
    run_yaml = trial_files(work, subnet)
    env = {**os.environ, "DOCKWARD_IMAGE": image,
           "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid)}  # fmt: skip
    compose = ["docker-compose", "-p", project, "-f", str(work / "up.yaml")]
    failed = 0
    try:
        r = subprocess.run([*compose, "up", "-d", "proxy"], env=env, capture_output=True,
                           text=True, timeout=300)  # fmt: skip
        if r.returncode:
            raise SystemExit(f"the trial proxy did not start: {r.stderr[-800:]}")
        deadline = time.monotonic() + 120
        while _docker("inspect", "-f", "{{.State.Health.Status}}", f"{project}_proxy_1",
                      check=False).strip() != "healthy":  # fmt: skip
            if time.monotonic() > deadline:
                raise SystemExit("the trial proxy did not become healthy in 120 s")
            time.sleep(1)
        for name in services:
            out = work / "out" / name
            out.mkdir(parents=True)
            print(f"harden {name} ...", file=sys.stderr, flush=True)
            t = time.monotonic()
            r = subprocess.run(
                [dockward, "harden", f"{run_yaml}:{name}", "--out-dir", str(out), "--json",
                 "--service", "--duration", str(DURATION[name]), "--prefix", f"{project}-{name}",
                 *(["--probe", PROBE[name]] if name in PROBE else [])],
                env=env, capture_output=True, text=True, timeout=3600,
            )  # fmt: skip
            if r.returncode not in (0, 1):
                print(f"harden {name} failed: {r.stderr.strip()[-800:]}", file=sys.stderr)
                failed += 1
                continue
            summary = _stable(json.loads(r.stdout), work, image)
            summary.pop("files", None)
            summary["trial"] = {
                "command": f"dockward harden deploy/compose.yaml:{name} --service --duration "
                f"{DURATION[name]:g}"
                + (f" --probe {shlex.quote(PROBE[name])}" if name in PROBE else "")
                + " (scripts/harden-deploy.py)",
                "image": image,
                "user": str(
                    yaml.safe_load(run_yaml.read_text())["services"][name].get("user") or ""
                ),
                "image_id": _docker("image", "inspect", "-f", "{{.Id}}", image).strip(),
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "wall_seconds": round(time.monotonic() - t, 1),
            }
            HARDEN.mkdir(exist_ok=True)
            (HARDEN / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
            override = yaml.safe_load((out / "compose.override.yml").read_text())
            svc = override["services"][name]
            svc["security_opt"] = [
                o.replace("seccomp:./", "seccomp:./harden/") for o in svc.get("security_opt", [])
            ]
            (HARDEN / f"{name}.override.yml").write_text(
                f"# `dockward harden` for the service {name} (scripts/harden-deploy.py); "
                "do not edit.\n" + yaml.safe_dump(override, sort_keys=False)
            )
            for f in (f"{name}-seccomp.json", f"{name}.apparmor"):
                if (out / f).exists():
                    shutil.copy(out / f, HARDEN / f)
            print(f"harden {name}: verified={summary['verified']} "
                  f"steps={[(s['setting'], s['kept']) for s in summary['steps']]}",
                  file=sys.stderr, flush=True)  # fmt: skip
            if r.returncode:
                failed += 1
    finally:
        subprocess.run([*compose, "down", "-v", "--timeout", "5"], env=env, capture_output=True,
                       timeout=300)  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("services", nargs="*", help=f"default: {' '.join(SERVICES)}")
    p.add_argument("--image", default=os.environ.get("DOCKWARD_IMAGE", "dockward:local"))
    p.add_argument("--check", action="store_true", help="compare, do not generate")
    p.add_argument("--compose", type=Path, default=DEPLOY / "compose.yaml")
    p.add_argument("--harden-dir", type=Path, default=HARDEN)
    p.add_argument("--units", type=Path, default=DEPLOY / "systemd")
    args = p.parse_args()
    bad = [s for s in args.services if s not in SERVICES]
    if bad:
        print(f"harden-deploy: no deployed service {bad[0]!r}", file=sys.stderr)
        return 2
    if args.check:
        errors = check(args.compose, args.harden_dir, args.units)
        for e in errors:
            print(e)
        return 1 if errors else 0
    return generate(args.image, args.services or list(SERVICES))


if __name__ == "__main__":
    sys.exit(main())
