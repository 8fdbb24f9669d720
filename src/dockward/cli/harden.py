"""`dockward harden`: propose a least-privilege spec for a container, proven by running it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from dockward import specs
from dockward.cli.common import EXIT_FINDINGS, EXIT_OK, env_default, write_output
from dockward.cli.workload import (
    add_workload_options,
    client_from_env,
    probe_argv,
    progress,
    workload_from_args,
)
from dockward.errors import DockwardError, UsageError
from dockward.model.container import ContainerSpec
from dockward.util.fs import atomic_write


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "harden",
        help="observe a workload and propose (and verify) its hardened spec",
        description="Runs the workload in throw-away containers: finds the minimal capabilities, "
        "tries no-new-privileges, a non-root user, a read-only rootfs with tmpfs for what it "
        "wrote, limits from the observed peak, learns a seccomp profile, then runs it all "
        "together. Writes seccomp.json, compose.override.yml, apparmor.profile to --out-dir.",
    )
    p.add_argument(
        "target",
        nargs="?",
        help="an existing container (name or id), or a compose file with the service: "
        "compose.yaml:SERVICE (the image is built from `build:` when it is not on the host)",
    )
    add_workload_options(p)
    p.add_argument(
        "--out-dir",
        default=env_default("HARDEN_DIR", "."),
        help="where the proposal's files go (default .) [DOCKWARD_HARDEN_DIR]",
    )
    p.add_argument("--service-name", default="", help="compose service name in the override")
    p.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=env_default("VERIFY", "1") != "0",
        help="run the hardened container with everything together at the end (default on) "
        "[DOCKWARD_VERIFY=0 to skip]",
    )
    p.add_argument("--keep-root", action="store_true", help="do not try a non-root user")
    p.add_argument("--json", action="store_true", help="print the proposal as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dockward.harden.apparmor_learn import learn_apparmor
    from dockward.harden.propose import (
        compose_override,
        harden,
        run_line,
        score,
        workload_from_inspect,
    )
    from dockward.profiles.seccomp import dumps

    if args.image and args.target:
        # with --image the first word after the options starts the command
        args.cmd, args.target = [args.target, *args.cmd], None
    from dockward.harden.compose import compose_target, workload_from_compose

    client = client_from_env()
    compose = compose_target(args.target) if args.target else None
    if compose:
        if args.duration <= 0 or args.duration > 3600:
            raise UsageError("--duration must be in (0, 3600] seconds")
        workload, before = workload_from_compose(
            client,
            compose[0],
            compose[1],
            probe=probe_argv(args.probe),
            duration=args.duration,
            network=args.network,
            progress=progress(not args.json),
        )
        args.service_name = args.service_name or before.name
    elif args.target:
        try:
            data = client.inspect_container(args.target)
        except Exception as exc:
            raise UsageError(f"no container named {args.target!r}") from exc
        workload = workload_from_inspect(data, (), args.duration, args.network)
        if args.probe:
            workload = replace(workload, probe=probe_argv(args.probe))
        before = specs.from_inspect(data)
    else:
        workload = workload_from_args(args)
        before = ContainerSpec(
            name=args.service_name or "app", image=workload.image, user=workload.user, origin="run"
        )
    out_dir = Path(args.out_dir)
    if not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir} is not a directory")
    name = args.service_name or (before.name.lstrip("/") or "app")
    seccomp_file = f"{name}-seccomp.json"
    proposal = harden(
        client,
        workload,
        before,
        prefix=args.prefix,
        service=args.service,
        try_non_root=not args.keep_root,
        seccomp_path=f"./{seccomp_file}",
        do_verify=args.verify,
        progress=progress(not args.json),
    )
    s = proposal.settings
    apparmor = learn_apparmor(
        name,
        s,
        proposal.learned.executables if proposal.learned else (),
        proposal.observation.written,
        workload.tmpfs,
    )
    files = {
        seccomp_file: dumps(proposal.learned.profile) if proposal.learned else "",
        "compose.override.yml": compose_override(name, s, f"./{seccomp_file}"),
        f"{name}.apparmor": apparmor.text,
    }
    try:
        for fname, text in files.items():
            if text:
                atomic_write(out_dir / fname, text)
    except OSError as exc:
        raise DockwardError(f"cannot write to {out_dir}: {exc.strerror}") from exc
    score_before, fails_before = score(proposal.before)
    score_after, fails_after = score(proposal.after)
    docker_run = run_line(workload, s, f"./{seccomp_file}")
    written = sorted(os.path.join(str(out_dir), f) for f, t in files.items() if t)
    summary = {
        "steps": [
            {"setting": st.setting, "kept": st.kept, "detail": st.detail} for st in proposal.steps
        ],
        "verified": proposal.verified,
        "broken_by": list(proposal.broken_by),
        "score": {
            "before": score_before,
            "after": score_after,
            "failing_before": fails_before,
            "failing_after": fails_after,
        },
        "capabilities": {
            "before": len(proposal.before.capabilities),
            "after": len(proposal.after.capabilities),
        },
        "syscalls": proposal.learned.syscall_count if proposal.learned else None,
        "apparmor": {
            "profile": apparmor.spec.profile_name,
            "executables": list(apparmor.spec.allow_exec),
            "writable": list(apparmor.spec.writable_paths),
            "strict_files": apparmor.spec.strict_files,
            "validated": apparmor.validated,
            "note": apparmor.note,
        },
        "docker_run": docker_run,
        "files": written,
        "seconds": {k: round(v, 2) for k, v in proposal.timings.items()},
    }
    if args.json:
        write_output(json.dumps(summary, indent=2) + "\n", None)
    else:
        lines = [
            f"{'kept ' if st.kept else 'LEFT OUT '}{st.setting}: {st.detail}"
            for st in proposal.steps
        ]
        lines.append(
            f"audit score {score_before}% -> {score_after}%"
            + (f" (still failing: {', '.join(fails_after)})" if fails_after else "")
        )
        if proposal.verified is not None:
            lines.append(
                "verified: the hardened container works"
                if proposal.verified
                else "VERIFY FAILED; broken by: " + ", ".join(proposal.broken_by)
            )
        lines.append(
            f"apparmor {apparmor.spec.profile_name}: {apparmor.note}"
            + {True: " (apparmor_parser accepts it)", False: "", None: ""}[apparmor.validated]
        )
        lines.append(docker_run)
        lines += [f"wrote {f}" for f in written]
        write_output("\n".join(lines) + "\n", None)
    sys.stdout.flush()
    return EXIT_FINDINGS if proposal.verified is False else EXIT_OK
