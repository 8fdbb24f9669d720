"""`dockward policy check`: the proxy's admission policy, applied in CI before anything runs."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from dockward import __version__
from dockward.cli.common import add_output_options, emit, env_default, env_flag, env_list
from dockward.errors import InputError, UsageError
from dockward.model.container import ContainerSpec
from dockward.model.finding import Location, Report, Result
from dockward.policy.admission import ImageGate, judge_container, judge_image, judge_request
from dockward.policy.model import Admission, Policy, PolicyExtra, load_policy
from dockward.policy.vulns import default_source
from dockward.specs.gojson import BodyError, loads


def register(sub: Any) -> None:
    p = sub.add_parser(
        "policy", help="apply the proxy's policy to compose files, run lines, images"
    )
    ps = p.add_subparsers(dest="policy_command", metavar="ACTION")
    c = ps.add_parser(
        "check",
        help="fail for exactly what `dockward proxy --policy` would refuse",
        description="Judge compose services, `docker run` lines, create bodies and images with "
        "the policy's admission rules. Exit 1 when the proxy would refuse any of them.",
    )
    c.add_argument(
        "--policy",
        default=env_default("POLICY"),
        help="policy file (YAML) [DOCKWARD_POLICY]",
    )
    c.add_argument(
        "--client",
        default=env_default("POLICY_CLIENT"),
        help="judge as this client entry of the policy (default: the top-level admission) "
        "[DOCKWARD_POLICY_CLIENT]",
    )
    c.add_argument("--compose", action="append", default=[], help="compose file (repeatable)")
    c.add_argument(
        "--run", dest="run_lines", action="append", default=[], help="a `docker run ...` line"
    )
    c.add_argument(
        "--body", action="append", default=[], help="a JSON `POST /containers/create` body file"
    )
    c.add_argument("--image", action="append", default=[], help="an image reference")
    c.add_argument(
        "--registry-scans",
        action="store_true",
        default=env_flag("REGISTRY_SCANS"),
        help="for images this host never scanned, use the scan `dockward scan --registry "
        "--attach` attached to the image in its registry (trust it only where pushes are "
        "trusted) [DOCKWARD_REGISTRY_SCANS=1]",
    )
    c.add_argument(
        "--session",
        action="append",
        default=[],
        help="a session recorded by `dockward proxy --learn FILE` (FILE.session.jsonl): every "
        "request in it must pass the policy as its client (routes and bodies)",
    )
    c.add_argument(
        "--insecure-registry",
        action="append",
        default=None,
        help="registry reached over plain HTTP [DOCKWARD_INSECURE_REGISTRIES]",
    )
    add_output_options(c, default_fail_on="info")
    c.set_defaults(run=run)
    p.set_defaults(run=_help(p))


def _help(p: argparse.ArgumentParser) -> Any:
    def show(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    return show


def _admission(policy: Policy, client: str | None) -> Admission:
    if not client:
        return policy.admission
    for c in (*policy.clients, *((policy.default,) if policy.default else ())):
        if c.name == client:
            return policy.admission_for(c)
    raise UsageError(f"--client {client}: no such client in {policy.source}")


def _session(policy: Policy, path: str, gate: ImageGate) -> list[Result]:
    """Replay a recorded session through the proxy's own decision (routes, then bodies)."""
    import json

    from dockward.policy import checks
    from dockward.policy.admission import QUERY_ROUTES
    from dockward.policy.routes import match_request
    from dockward.proxy.authz import Caller, PolicyAuthorizer
    from dockward.proxy.paths import PathError, parse_target

    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    authz = PolicyAuthorizer(policy)
    results: list[Result] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            who = rec["client"]
            caller = Caller(
                uid=who.get("uid"),
                gid=who.get("gid"),
                address=who.get("addr") or "",
                token_sha256=who.get("token_sha256") or "",
            )
            method, target = str(rec["method"]), parse_target(str(rec["target"]))
        except (ValueError, KeyError, TypeError, AttributeError, PathError) as exc:
            raise InputError(f"{path}:{number}: not a recorded request ({exc})") from exc
        where = Location(path, line=number)
        match = match_request(method, target.path, target.query)
        what = f"{method} {target.path}"
        verdict = authz.decide(caller, method, target, match)
        if not verdict.allowed:
            results += _located([checks.fail(checks.ROUTE, what, verdict.reason)], where)
            continue
        if verdict.judge_body and verdict.admission is not None and match is not None:
            route = match.route.name
            doc = None
            if route not in QUERY_ROUTES:
                try:
                    doc = loads(str(rec.get("body") or "").encode())
                except BodyError as exc:
                    results += _located([checks.fail(checks.UNJUDGEABLE, what, str(exc))], where)
                    continue
            found = judge_request(route, target.query, doc, verdict.admission, gate)
            results += _located(found, where)
        results.append(checks.passed(checks.ROUTE, what, f"allowed for {verdict.client}"))
    return results


def _located(results: list[Result], location: Location | None) -> list[Result]:
    from dataclasses import replace

    return [replace(r, location=r.location or location) for r in results]


def run(args: argparse.Namespace) -> int:
    if not args.policy:
        raise UsageError("policy check needs --policy FILE")
    if not (args.compose or args.run_lines or args.body or args.image or args.session):
        raise UsageError("nothing to check: give --compose, --run, --body, --image or --session")
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    policy = load_policy(args.policy)
    adm = _admission(policy, args.client)
    from dockward.engine.client import resolve_endpoint
    from dockward.proxy.runner import local_digest_lookup, local_image_lookup

    endpoint = resolve_endpoint()
    if endpoint.local:  # offline first: what the local daemon has, before any registry
        gate = ImageGate(
            vulns=default_source(),
            local_digest=local_digest_lookup(endpoint.socket_path),
            local_image=local_image_lookup(endpoint.socket_path),
        )
    else:
        gate = ImageGate(vulns=default_source())
    insecure = tuple(args.insecure_registry or env_list("INSECURE_REGISTRIES"))
    gate.insecure.update(insecure)
    if args.registry_scans:
        from dockward.proxy.runner import with_registry_scans

        with_registry_scans(gate)
    results: list[Result] = []
    from dockward.lint import load_compose, spec_from_run_line

    if args.compose:
        project = load_compose(args.compose)
        for service in project.services:
            spec: ContainerSpec = service.spec
            results += _located(
                judge_container(spec, adm, f"service {service.name}", gate=gate),
                service.location,
            )
    for i, line in enumerate(args.run_lines):
        spec = spec_from_run_line(line)
        results += judge_container(spec, adm, f"run[{i}] {spec.image}", gate=gate)
    for path in args.body:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            doc = loads(data)
        except BodyError as exc:
            raise InputError(f"{path}: {exc}") from exc
        body_results = judge_request("containers.create", {}, doc, adm, gate)
        results += _located(body_results, Location(path))
    for image in args.image:
        results += judge_image(image, adm.images, gate)
    for path in args.session:
        results += _session(policy, path, gate)
    report = Report(
        command="policy check",
        results=tuple(results),
        started=started,
        finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        tool_version=__version__,
        extra=PolicyExtra(str(policy.source)),
    )
    return emit(report, args)
