"""Workload flags shared by `profile` and `harden`: what to run and how to tell it works."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable
from typing import Any

from dockward.cli.common import env_default, env_option
from dockward.errors import UsageError
from dockward.harden.runner import Workload


def add_workload_options(p: argparse.ArgumentParser, *, image_required: bool = False) -> None:
    g = p.add_argument_group("workload")
    g.add_argument("--image", required=image_required, help="image to run")
    g.add_argument("--user", default="", help="user to run the workload as (default: the image's)")
    g.add_argument(
        "--probe",
        default=env_default("PROBE", ""),
        help="command run inside the container that must exit 0, e.g. 'wget -qO- "
        "http://127.0.0.1:8080/' (default: the container's healthcheck) [DOCKWARD_PROBE]",
    )
    env_option(
        g,
        "--duration",
        env="DURATION",
        type=float,
        default=2.0,
        help="seconds to observe a service before probing it (default 2)",
    )
    g.add_argument(
        "--network",
        default=env_default("NETWORK", ""),
        help="network for the trial containers (default: the deployed container's or compose "
        "service's network; none, loopback only, for --image) [DOCKWARD_NETWORK]",
    )
    kind = g.add_mutually_exclusive_group()
    kind.add_argument(
        "--service", dest="service", action="store_true", default=None, help="must keep running"
    )
    kind.add_argument(
        "--one-shot", dest="service", action="store_false", help="must exit 0 by itself"
    )
    g.add_argument(
        "--prefix", default="dockward-harden", help="name/label prefix of trial containers"
    )
    g.add_argument("cmd", nargs="*", metavar="-- CMD", help="command to run in the image")


def probe_argv(text: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(text))
    except ValueError as exc:
        raise UsageError(f"--probe: {exc}") from exc


def workload_from_args(args: argparse.Namespace) -> Workload:
    if not args.image:
        raise UsageError("--image is required")
    if args.duration <= 0 or args.duration > 3600:
        raise UsageError("--duration must be in (0, 3600] seconds")
    return Workload(
        image=args.image,
        command=tuple(args.cmd),
        user=args.user,
        probe=probe_argv(args.probe),
        duration=args.duration,
        network=args.network or "none",
    )


def client_from_env() -> Any:
    from dockward.engine import connect, resolve_endpoint

    return connect(resolve_endpoint(os.environ.get("DOCKWARD_HOST")), timeout=60)


def progress(enabled: bool) -> Callable[[str], None] | None:
    """A rich progress bar for harden/profile trials on a terminal; silent otherwise."""
    from dockward.cli.progress import progress_bar

    return progress_bar(enabled and sys.stderr.isatty())
