"""Lint Dockerfiles, compose files and `docker run` lines before anything runs."""

from dockward.lint.compose import ComposeProject, ComposeService, load_compose
from dockward.lint.runargv import run_argv_to_spec, spec_from_run_line, split_command_line

__all__ = [
    "ComposeProject",
    "ComposeService",
    "load_compose",
    "run_argv_to_spec",
    "spec_from_run_line",
    "split_command_line",
]
