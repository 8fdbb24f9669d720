"""Formatters: one registry, every command. Formatters see only a Report."""

from __future__ import annotations

from collections.abc import Callable

from dockward.model.finding import Report
from dockward.report.dockerbench import render_docker_bench
from dockward.report.html import render_html
from dockward.report.jsonfmt import render_json, report_from_json
from dockward.report.junit import render_junit
from dockward.report.sarif import render_sarif
from dockward.report.table import render_table

Formatter = Callable[[Report], str]

FORMATTERS: dict[str, Formatter] = {
    "table": render_table,
    "json": render_json,
    "sarif": render_sarif,
    "junit": render_junit,
    "html": render_html,
    "docker-bench": render_docker_bench,
}


def register_formatter(name: str, formatter: Formatter) -> None:
    if name in FORMATTERS:
        raise ValueError(f"formatter {name} already registered")
    FORMATTERS[name] = formatter


def render(report: Report, fmt: str) -> str:
    try:
        return FORMATTERS[fmt](report)
    except KeyError as exc:
        raise ValueError(
            f"unknown format {fmt!r} (expected one of {', '.join(FORMATTERS)})"
        ) from exc


__all__ = ["FORMATTERS", "Formatter", "register_formatter", "render", "report_from_json"]
