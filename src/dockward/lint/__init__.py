"""Lint Dockerfiles, compose files and `docker run` lines before anything runs.

Public API (imported lazily, so `dockward lint Dockerfile` does not pay for YAML at start-up):
`load_compose(paths, env=None, profiles=None)` -> ComposeProject (services with their
ContainerSpec, source Location and per-key locations); `run_argv_to_spec(argv)`,
`spec_from_run_line(line)`; `parse_dockerfile(text, path)`; `lint(paths, options)` -> Report.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockward.lint.compose import ComposeProject, ComposeService, load_compose
    from dockward.lint.dockerfile import Dockerfile, parse_dockerfile
    from dockward.lint.engine import LintOptions, lint
    from dockward.specs.runargv import run_argv_to_spec, spec_from_run_line, split_command_line

_LAZY = {
    "ComposeProject": "dockward.lint.compose",
    "ComposeService": "dockward.lint.compose",
    "load_compose": "dockward.lint.compose",
    "Dockerfile": "dockward.lint.dockerfile",
    "parse_dockerfile": "dockward.lint.dockerfile",
    "LintOptions": "dockward.lint.engine",
    "lint": "dockward.lint.engine",
    "run_argv_to_spec": "dockward.specs.runargv",
    "spec_from_run_line": "dockward.specs.runargv",
    "split_command_line": "dockward.specs.runargv",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "ComposeProject",
    "ComposeService",
    "Dockerfile",
    "LintOptions",
    "lint",
    "load_compose",
    "parse_dockerfile",
    "run_argv_to_spec",
    "spec_from_run_line",
    "split_command_line",
]
