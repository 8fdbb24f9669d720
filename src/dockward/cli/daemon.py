"""`dockward daemon harden`: propose, apply and roll back a hardened daemon.json."""

from __future__ import annotations

import argparse
import json
import shlex
import time
from typing import Any

from dockward.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    env_default,
    env_list,
    env_option,
    write_output,
)
from dockward.errors import ConfigError, DockwardError, UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("daemon", help="harden the Docker daemon's configuration")
    daemon_sub = p.add_subparsers(dest="daemon_command", metavar="SUBCOMMAND")
    h = daemon_sub.add_parser(
        "harden",
        help="propose (and apply) a hardened daemon.json from the failing daemon checks",
        description="Reads the daemon's effective configuration (flags, daemon.json, /info), "
        "runs the daemon checks and proposes daemon.json changes for those that fail, merged "
        "into the existing file (every other key kept). Shows a diff; --apply writes it "
        "atomically (previous version kept as daemon.json.bak plus a timestamped copy), "
        "--restart restarts dockerd and checks it came back (else the previous file is put "
        "back), --rollback restores the previous version. Keys that a dockerd flag also sets "
        "are reported, never written: dockerd refuses to start with a key given both ways.",
    )
    h.add_argument(
        "--host",
        "-H",
        default=env_default("HOST"),
        help="the daemon (unix socket of a local dockerd) [DOCKWARD_HOST; default DOCKER_HOST]",
    )
    h.add_argument(
        "--config-file",
        default=env_default("DAEMON_CONFIG"),
        help="daemon.json to read and write (default: the file the daemon reads) "
        "[DOCKWARD_DAEMON_CONFIG]",
    )
    h.add_argument(
        "--userns-remap",
        default=env_default("USERNS_REMAP", "default"),
        metavar="default|USER[:GROUP]|off",
        help="remap container root to this user's subordinate ids (default: default, i.e. "
        "dockremap) [DOCKWARD_USERNS_REMAP]",
    )
    h.add_argument(
        "--log-driver",
        default=env_default("LOG_DRIVER", ""),
        help="switch to this central log driver, e.g. syslog (default: keep the driver, add "
        "rotation to json-file) [DOCKWARD_LOG_DRIVER]",
    )
    h.add_argument(
        "--log-opt",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="log option for --log-driver, repeatable [DOCKWARD_LOG_OPT, comma-separated]",
    )
    h.add_argument(
        "--ip",
        default=env_default("DAEMON_IP", ""),
        help="default bind address of published ports, e.g. 127.0.0.1 [DOCKWARD_DAEMON_IP]",
    )
    h.add_argument(
        "--seccomp-profile",
        default=env_default("SECCOMP_PROFILE", ""),
        help="absolute path of a daemon-wide seccomp profile [DOCKWARD_SECCOMP_PROFILE]",
    )
    h.add_argument(
        "--nofile",
        default=env_default("NOFILE", ""),
        metavar="SOFT:HARD",
        help="default open-files ulimit for containers (default 65536, capped at dockerd's own "
        "hard limit, which containers cannot exceed) [DOCKWARD_NOFILE]",
    )
    h.add_argument(
        "--skip",
        action="append",
        default=None,
        metavar="KEY",
        help="leave this daemon.json key alone, repeatable [DOCKWARD_SKIP_KEYS]",
    )
    h.add_argument("--apply", action="store_true", help="write the proposed daemon.json")
    h.add_argument(
        "--restart",
        action="store_true",
        help="with --apply/--rollback: restart dockerd and check it answers (else roll back)",
    )
    h.add_argument(
        "--restart-cmd",
        default=env_default("RESTART_CMD", ""),
        help="command that restarts this dockerd (split like a shell, run without one; default: "
        "systemctl restart docker / service docker restart) [DOCKWARD_RESTART_CMD]",
    )
    env_option(
        h,
        "--wait",
        env="RESTART_WAIT",
        type=float,
        default=60.0,
        help="seconds to wait for dockerd to answer after a restart (default 60)",
    )
    h.add_argument(
        "--rollback", action="store_true", help="restore the previous daemon.json (.bak)"
    )
    h.add_argument("--json", action="store_true", help="print the result as JSON")
    h.add_argument(
        "--print-file", action="store_true", help="print the proposed daemon.json, not a diff"
    )
    h.set_defaults(run=run)
    p.set_defaults(run=lambda _a: _usage(p))


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


def _options(args: argparse.Namespace) -> Any:
    from dockward.harden.daemon import DaemonOptions

    remap = "" if args.userns_remap.strip().lower() in ("off", "none", "") else args.userns_remap
    log_opts: dict[str, str] = {}
    for item in args.log_opt or env_list("LOG_OPT"):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UsageError(f"--log-opt {item!r}: expected KEY=VALUE")
        log_opts[key] = value
    if log_opts and not args.log_driver:
        raise UsageError("--log-opt needs --log-driver")
    nofile: tuple[int, int] | None = None
    if args.nofile:
        soft, _, hard = args.nofile.partition(":")
        try:
            nofile = (int(soft), int(hard or soft))
        except ValueError as exc:
            raise UsageError(f"--nofile {args.nofile!r}: expected SOFT:HARD") from exc
        if not 0 < nofile[0] <= nofile[1]:
            raise UsageError("--nofile: need 0 < SOFT <= HARD")
    if args.seccomp_profile:
        from dockward.harden.daemon_keys import seccomp_profile_problems

        problems = seccomp_profile_problems(args.seccomp_profile)
        if problems:
            raise UsageError(f"--seccomp-profile: {problems[0]}")
    if args.ip:
        import ipaddress

        try:
            ipaddress.ip_address(args.ip)
        except ValueError as exc:
            raise UsageError(f"--ip {args.ip!r} is not an IP address") from exc
    return DaemonOptions(
        userns_remap=remap,
        log_driver=args.log_driver,
        log_opts=log_opts,
        ip=args.ip,
        seccomp_profile=args.seccomp_profile,
        nofile=nofile,
        skip=frozenset(args.skip or env_list("SKIP_KEYS")),
    )


def run(args: argparse.Namespace) -> int:
    from dockward.engine import resolve_endpoint

    if args.rollback and args.apply:
        raise UsageError("--apply and --rollback exclude each other")
    if args.restart and not (args.apply or args.rollback):
        raise UsageError("--restart needs --apply or --rollback")
    if args.wait <= 0 or args.wait > 3600:
        raise UsageError("--wait must be in (0, 3600] seconds")
    endpoint = resolve_endpoint(args.host)
    if args.rollback:
        return _rollback(args, endpoint)
    return _harden(args, endpoint)


def _restart_command(args: argparse.Namespace, socket_path: str) -> tuple[str, ...] | None:
    from dockward.harden.daemon import default_restart_command

    if args.restart_cmd:
        try:
            cmd = tuple(shlex.split(args.restart_cmd))
        except ValueError as exc:
            raise UsageError(f"--restart-cmd: {exc}") from exc
        if not cmd:
            raise UsageError("--restart-cmd is empty")
        return cmd
    return default_restart_command(socket_path)


def _wait_ready(endpoint: Any, wait: float) -> Any:
    """A client of the restarted daemon, or None when it does not answer in time."""
    from dockward.engine import connect
    from dockward.engine.daemon_config import find_dockerd_argv

    deadline = time.monotonic() + wait
    gone_since: float | None = None
    while time.monotonic() < deadline:
        try:
            client = connect(endpoint, timeout=10)
            client.info()
            return client
        except Exception:
            time.sleep(0.3)
        # A dockerd that refuses its configuration exits at once: no need to wait it out.
        if find_dockerd_argv(endpoint.socket_path) is None:
            gone_since = gone_since or time.monotonic()
            if time.monotonic() - gone_since > 3:
                return None
        else:
            gone_since = None
    return None


def _rollback(args: argparse.Namespace, endpoint: Any) -> int:
    from dockward.engine.daemon_config import (
        DEFAULT_CONFIG,
        find_dockerd_argv,
        parse_dockerd_argv,
    )
    from dockward.harden.daemon import rollback, run_restart

    path = args.config_file
    if not path:
        argv = find_dockerd_argv(endpoint.socket_path) if endpoint.local else None
        path = str((parse_dockerd_argv(argv) if argv else {}).get("config-file") or DEFAULT_CONFIG)
    rollback(path)
    lines = [f"restored the previous version of {path} (the replaced one is {path}.bak)"]
    if args.restart:
        cmd = _restart_command(args, endpoint.socket_path)
        if cmd is None:
            raise UsageError("do not know how to restart this dockerd: pass --restart-cmd")
        run_restart(cmd)
        if _wait_ready(endpoint, args.wait) is None:
            raise DockwardError(f"dockerd did not answer within {args.wait:.0f}s after restart")
        lines.append("dockerd restarted and answers")
    else:
        lines.append("restart dockerd to use it")
    write_output("\n".join(lines) + "\n", None)
    return EXIT_OK


def _snapshot(endpoint: Any) -> Any:
    from dockward.engine import collect_snapshot, connect

    client = connect(endpoint, timeout=30)
    try:
        return collect_snapshot(client, endpoint, with_processes=False)
    finally:
        client.close()


def _harden(args: argparse.Namespace, endpoint: Any) -> int:
    from dockward.harden.daemon import (
        apply,
        failing_rules,
        plan,
        process_nofile,
        rollback,
        run_restart,
    )
    from dockward.model.finding import Status

    options = _options(args)
    if not endpoint.local:
        raise UsageError("daemon harden works on a local dockerd (a unix socket on this host)")
    t0 = time.monotonic()
    snap = _snapshot(endpoint)
    proposal = plan(
        snap, options, args.config_file, nofile_ceiling=process_nofile(snap.daemon.argv)
    )
    result: dict[str, Any] = {
        "config_file": proposal.config_file,
        "failing": list(proposal.failing),
        "changes": [
            {
                "key": c.key,
                "old": c.old,
                "new": None if c.remove else c.new,
                "rule": c.rule,
                "why": c.why,
                "remove": c.remove,
            }
            for c in proposal.changes
        ],
        "blocked": [{"key": b.key, "rule": b.rule, "message": b.message} for b in proposal.blocked],
        "conflicts": list(proposal.conflicts),
        "warnings": list(proposal.warnings),
        "manual": [
            {"rule": m.rule, "message": m.message, "remediation": m.remediation}
            for m in proposal.manual
        ],
        "diff": proposal.diff(),
        "proposed": dict(proposal.proposed),
    }
    lines = [f"{c.rule or 'rotation'}: {c.describe()} - {c.why}" for c in proposal.changes]
    lines += [f"BLOCKED {b.rule} {b.key}: {b.message}" for b in proposal.blocked]
    lines += [f"CONFLICT {c}" for c in proposal.conflicts]
    lines += [f"warning: {w}" for w in proposal.warnings]
    lines += [f"manual {m.rule}: {m.message} - {m.remediation}" for m in proposal.manual]
    lines.append(proposal.render().rstrip("\n") if args.print_file else proposal.diff().rstrip())
    code = EXIT_OK
    if not args.apply:
        if proposal.changes:
            lines.append(f"run again with --apply to write {proposal.config_file}")
        code = EXIT_FINDINGS if proposal.changes or proposal.blocked or proposal.conflicts else 0
    elif proposal.conflicts:
        raise ConfigError(f"not written: {proposal.conflicts[0]}")
    elif not proposal.changes:
        lines.append("nothing to change")
    else:
        applied = apply(proposal)
        result["applied"] = {"previous": applied.previous, "backup": applied.backup}
        lines.append(
            f"wrote {applied.config_file} (previous version: {applied.previous}, "
            f"copy: {applied.backup})"
        )
        cmd = _restart_command(args, endpoint.socket_path)
        if not args.restart:
            how = shlex.join(cmd) if cmd else "restart dockerd"
            lines.append(f"{how} to use it; `dockward daemon harden --rollback` undoes it")
        elif cmd is None:
            raise UsageError(
                f"wrote {applied.config_file}, but do not know how to restart this dockerd: "
                "pass --restart-cmd (or restart it yourself)"
            )
        else:
            t1 = time.monotonic()
            why = ""
            try:
                run_restart(cmd)  # systemctl fails here when dockerd refuses the file
            except ConfigError as exc:
                why = f" ({exc})"
            client = None if why else _wait_ready(endpoint, args.wait)
            if client is None:
                rollback(proposal.config_file)
                try:
                    run_restart(cmd)
                    back = _wait_ready(endpoint, args.wait) is not None
                except ConfigError:
                    back = False
                raise DockwardError(
                    f"dockerd did not come back with the new {proposal.config_file}{why} (it "
                    f"exited, or gave no answer within {args.wait:.0f}s; see its log); the "
                    "previous version is restored"
                    + (" and dockerd is back" if back else " but dockerd is still down")
                )
            client.close()
            after = failing_rules(_snapshot(endpoint))
            fixed = sorted(
                r for r in proposal.failing if after.get(r, (Status.PASS, ""))[0] is not Status.FAIL
            )
            still = sorted(r for r, (st, _m) in after.items() if st is Status.FAIL)
            result["restart"] = {
                "seconds": round(time.monotonic() - t1, 2),
                "now_passing": fixed,
                "still_failing": still,
            }
            lines.append(
                f"dockerd restarted in {time.monotonic() - t1:.1f}s; now passing: "
                f"{', '.join(fixed) or 'none'}; still failing: {', '.join(still) or 'none'}"
            )
    result["seconds"] = round(time.monotonic() - t0, 2)
    if args.json:
        write_output(json.dumps(result, indent=2, default=str) + "\n", None)
    else:
        write_output("\n".join(line for line in lines if line) + "\n", None)
    return code
