"""`dockward profile seccomp|apparmor|caps`: least-privilege profiles, learned and verified."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dockward.cli.common import EXIT_FINDINGS, EXIT_OK, env_default, write_output
from dockward.cli.workload import (
    add_workload_options,
    client_from_env,
    progress,
    workload_from_args,
)
from dockward.errors import DockwardError, InputError, UsageError
from dockward.model.container import DEFAULT_CAPABILITIES, normalise_capability
from dockward.profiles.seccomp import SeccompProfile, dumps, loads

MAX_PROFILE_BYTES = 4 * 1024 * 1024


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("profile", help="seccomp, AppArmor and capability profiles")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", parser_class=type(p))
    p.set_defaults(run=lambda a: _usage(p))

    sec = kinds.add_parser("seccomp", help="Docker's default, learn, diff, merge, explain")
    actions = sec.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    sec.set_defaults(run=lambda a: _usage(sec))

    d = actions.add_parser("default", help="print Docker's default profile (engine 20.10)")
    _out(d)
    d.add_argument("--resolve", action="store_true", help="apply the cap/arch/kernel conditions")
    d.add_argument("--cap-add", action="append", default=[], help="with --resolve: extra cap")
    d.set_defaults(run=run_default)

    learn = actions.add_parser(
        "learn", help="record a workload's syscalls; emit and verify a profile"
    )
    _out(learn)
    add_workload_options(learn)
    learn.add_argument("--container", help="learn for an existing container's image and command")
    learn.add_argument("--cap-add", action="append", default=[], help="run with these caps only")
    learn.add_argument("--no-verify", action="store_true", help="skip the run under the profile")
    learn.set_defaults(run=run_learn)

    df = actions.add_parser("diff", help="what B allows that A does not, and the reverse")
    df.add_argument("a", help="profile A (JSON file, or 'default')")
    df.add_argument("b", help="profile B (JSON file, or 'default')")
    df.add_argument("--cap-add", action="append", default=[], help="resolve for these extra caps")
    df.add_argument("--json", action="store_true", help="machine-readable output")
    df.set_defaults(run=run_diff)

    mg = actions.add_parser("merge", help="union of profiles with the same default action")
    mg.add_argument("profiles", nargs="+", help="JSON files")
    _out(mg)
    mg.set_defaults(run=run_merge)

    ex = actions.add_parser("explain", help="syscalls a profile allows beyond Docker's default")
    ex.add_argument("profile", help="JSON file")
    ex.add_argument("--json", action="store_true")
    ex.set_defaults(run=run_explain)

    aa = kinds.add_parser("apparmor", help="AppArmor profile from bane TOML or dockward YAML")
    aa.add_argument("spec", help="bane .toml or dockward .yaml file")
    _out(aa)
    aa.add_argument("--no-validate", action="store_true", help="skip apparmor_parser -Q -K")
    aa.add_argument("--install", action="store_true", help="write to --profile-dir and load it")
    aa.add_argument(
        "--profile-dir",
        default=env_default("APPARMOR_DIR", "/etc/apparmor.d/containers"),
        help="where --install writes (default /etc/apparmor.d/containers) [DOCKWARD_APPARMOR_DIR]",
    )
    aa.set_defaults(run=run_apparmor)

    al = kinds.add_parser(
        "apparmor-learn",
        help="AppArmor profile with file rules learned from a run (programs run, paths written)",
        description="Runs the workload twice: once recording its syscalls' audit records (whose "
        "exe names every program it runs), once to list what it wrote (docker diff). Emits "
        "docker-default with `file,` replaced by: read anywhere, write only there, execute "
        "only those programs; checked with apparmor_parser -Q -K.",
    )
    _out(al)
    add_workload_options(al, image_required=True)
    al.add_argument("--name", default="", help="profile name (default: from the image)")
    al.add_argument("--cap-add", action="append", default=[], help="capabilities to allow")
    al.set_defaults(run=run_apparmor_learn)

    caps = kinds.add_parser("caps", help="minimal capabilities, found by running the workload")
    add_workload_options(caps)
    caps.add_argument("--json", action="store_true")
    caps.set_defaults(run=run_caps)


def _out(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default=None, help="write to FILE atomically (default stdout)")


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def read_profile(path: str) -> SeccompProfile:
    if path == "default":
        from dockward.profiles.default import default_profile

        return default_profile()
    try:
        data = Path(path).read_bytes()[: MAX_PROFILE_BYTES + 1]
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > MAX_PROFILE_BYTES:
        raise InputError(f"{path}: larger than {MAX_PROFILE_BYTES} bytes")
    return loads(data.decode("utf-8", "replace"), path)


def _caps(extra: list[str]) -> frozenset[str]:
    return DEFAULT_CAPABILITIES | {normalise_capability(c) for c in extra}


def run_default(args: argparse.Namespace) -> int:
    from dockward.profiles.default import default_for, default_profile

    prof = default_for(_caps(args.cap_add)) if args.resolve else default_profile()
    write_output(dumps(prof), args.output)
    return EXIT_OK


def run_learn(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from dockward.harden.learn import learn_seccomp, verify_seccomp
    from dockward.harden.propose import workload_from_inspect
    from dockward.harden.runner import Settings

    client = client_from_env()
    if args.container:
        try:
            data = client.inspect_container(args.container)
        except Exception as exc:
            raise UsageError(f"no container {args.container!r}: {exc}") from exc
        workload = workload_from_inspect(data, (), args.duration, args.network)
        if args.probe:
            from dockward.cli.workload import probe_argv

            workload = replace(workload, probe=probe_argv(args.probe))
    else:
        workload = workload_from_args(args)
    settings = Settings()
    if args.cap_add:
        settings = Settings(cap_drop=("ALL",), cap_add=tuple(args.cap_add))
    say = progress(True)
    if say:
        say(f"recording the syscalls of {workload.image}")
    lp = learn_seccomp(client, workload, settings, prefix=args.prefix, service=args.service)
    lines = [
        f"learned {lp.syscall_count} syscalls in {lp.seconds:.1f}s from {lp.records} audit records"
    ]
    if lp.denied_by_default:
        lines.append(
            "left out (Docker's default denies them): " + ", ".join(sorted(lp.denied_by_default))
        )
    if lp.lost:
        lines.append(f"WARNING: the kernel lost {lp.lost} audit records; the profile may be short")
    code = EXIT_OK
    if not args.no_verify:
        outcome = verify_seccomp(
            client, workload, settings, lp.profile, prefix=args.prefix, service=args.service
        )
        lines.append(("verified: " if outcome.ok else "VERIFY FAILED: ") + outcome.reason)
        code = EXIT_OK if outcome.ok else EXIT_FINDINGS
    write_output(dumps(lp.profile), args.output)
    sys.stderr.write("\n".join(lines) + "\n")
    return code


def run_diff(args: argparse.Namespace) -> int:
    from dockward.profiles.compare import diff
    from dockward.profiles.default import host_kernel
    from dockward.profiles.seccomp import resolve
    from dockward.profiles.syscalls import host_arch

    caps = _caps(args.cap_add)
    kernel = host_kernel()
    a = resolve(read_profile(args.a), caps, host_arch(), kernel)
    b = resolve(read_profile(args.b), caps, host_arch(), kernel)
    d = diff(a, b)
    if args.json:
        out = {
            k: [{"syscall": c.syscall, "a": c.before, "b": c.after} for c in v]
            for k, v in (("added", d.added), ("removed", d.removed), ("changed", d.changed))
        }
        write_output(json.dumps(out, indent=2) + "\n", None)
    else:
        text = [f"+ {c.syscall}  ({c.before} -> {c.after})" for c in d.added]
        text += [f"- {c.syscall}  ({c.before} -> {c.after})" for c in d.removed]
        text += [f"~ {c.syscall}  ({c.before} -> {c.after})" for c in d.changed]
        text.append(
            f"{len(d.added)} allowed only in B, {len(d.removed)} only in A, "
            f"{len(d.changed)} changed"
        )
        write_output("\n".join(text) + "\n", None)
    return EXIT_OK if d.empty else EXIT_FINDINGS


def run_merge(args: argparse.Namespace) -> int:
    from dockward.profiles.compare import merge

    profiles = [read_profile(p) for p in args.profiles]
    write_output(dumps(merge(profiles[0], *profiles[1:])), args.output)
    return EXIT_OK


def run_explain(args: argparse.Namespace) -> int:
    from dockward.profiles.compare import explain
    from dockward.profiles.default import default_for, default_profile
    from dockward.profiles.seccomp import resolve
    from dockward.profiles.syscalls import host_arch

    prof = resolve(read_profile(args.profile), DEFAULT_CAPABILITIES, host_arch())
    items = explain(prof, default_for(), default_profile())
    if args.json:
        write_output(
            json.dumps(
                [
                    {
                        "syscall": e.syscall,
                        "effect": e.effect,
                        "why_default_denies": e.why_default_denies,
                    }
                    for e in items
                ],
                indent=2,
            )
            + "\n",
            None,
        )
    else:
        text = [f"{e.syscall:24} {e.effect:18} {e.why_default_denies}" for e in items]
        text.append(f"{len(items)} syscalls allowed beyond Docker's default")
        write_output("\n".join(text) + "\n", None)
    return EXIT_FINDINGS if items else EXIT_OK


def run_apparmor(args: argparse.Namespace) -> int:
    from dockward.profiles.apparmor import install, load_spec, render, validate

    spec = load_spec(args.spec)
    text = render(spec)
    if not args.no_validate:
        validate(text)
    if args.install:
        path = install(text, spec, args.profile_dir)
        sys.stderr.write(
            f"loaded {spec.profile_name} from {path}; run with "
            f"--security-opt apparmor={spec.profile_name}\n"
        )
        return EXIT_OK
    write_output(text, args.output)
    return EXIT_OK


def run_apparmor_learn(args: argparse.Namespace) -> int:
    import re

    from dockward.harden.apparmor_learn import learn_apparmor
    from dockward.harden.learn import learn_seccomp
    from dockward.harden.propose import observe
    from dockward.harden.runner import Settings

    workload = workload_from_args(args)
    name = args.name or re.sub(r"[^A-Za-z0-9_.-]", "-", workload.image.rsplit("/", 1)[-1])[:64]
    caps = tuple(c.upper().removeprefix("CAP_") for c in args.cap_add)
    settings = Settings(cap_drop=("ALL",), cap_add=caps) if caps else Settings()
    client = client_from_env()
    say = progress(True)
    if say:
        say("recording the programs the workload runs")
    learned = learn_seccomp(client, workload, settings, prefix=args.prefix, service=args.service)
    if say:
        say("listing what it writes")
    obs = observe(client, workload, settings, prefix=args.prefix, service=args.service)
    result = learn_apparmor(name, settings, learned.executables, obs.written, workload.tmpfs)
    if result.validated is False:
        raise DockwardError(f"the learned profile is not valid: {result.note}")
    sys.stderr.write(f"dockward: {result.spec.profile_name}: {result.note}\n")
    write_output(result.text, args.output)
    return EXIT_OK


def run_caps(args: argparse.Namespace) -> int:
    from dockward.harden.caps import minimal_capabilities

    workload = workload_from_args(args)
    result = minimal_capabilities(
        client_from_env(),
        workload,
        prefix=args.prefix,
        service=args.service,
        progress=progress(not args.json),
    )
    if args.json:
        write_output(
            json.dumps(
                {
                    "cap_drop": ["ALL"],
                    "cap_add": list(result.cap_add),
                    "before": list(result.before),
                    "runs": len(result.trials),
                    "seconds": round(result.seconds, 2),
                },
                indent=2,
            )
            + "\n",
            None,
        )
    else:
        write_output(
            f"cap_drop: [ALL]\ncap_add: [{', '.join(result.cap_add)}]\n"
            f"# {len(result.before)} -> {len(result.cap_add)} capabilities, "
            f"{len(result.trials)} runs, {result.seconds:.1f}s\n",
            None,
        )
    return EXIT_OK
