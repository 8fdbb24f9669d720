"""A fleet's results spooled to disk host by host: the streamed JSON is the document render_json
writes for the same report, and results read back whole."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from dockward.audit import AuditExtra, build_report
from dockward.model import Report, Severity
from dockward.report import render
from dockward.report.spool import ResultSpool, atomic_output, write_json_stream
from dockward.rules.container import hardened_example
from dockward.rules.daemon import example_snapshot


def host_reports() -> list[Report]:
    bad = hardened_example().with_changes(name="web", privileged=True, cap_add=("SYS_ADMIN",))
    first = build_report([example_snapshot(containers=(bad, hardened_example()))])
    second = build_report([example_snapshot(containers=(hardened_example(),))])
    return [first, second]


def whole(reports: list[Report]) -> Report:
    return Report(
        "audit",
        tuple(r for rep in reports for r in rep.results),
        started="2026-12-07T18:00:00+00:00",
        finished="2026-12-07T18:01:00+00:00",
        hosts=("a", "b"),
        warnings=("w",),
        extra=AuditExtra(10, 0),
        tool_version="0.1.0",
    )


def test_streamed_json_is_render_json_of_the_whole_report() -> None:
    reports = host_reports()
    spool = ResultSpool()
    spool.add("1", reports[1].results)  # hosts finish out of order; the report keeps the order
    spool.add("0", reports[0].results)
    full = whole(reports)
    out = io.BytesIO()
    from dataclasses import replace

    write_json_stream(replace(full, results=()), spool, ["0", "1"], out)
    assert out.getvalue().decode() == render(full, "json")
    assert spool.score() == full.score()
    assert spool.worst_failing() == full.worst_failing()
    assert full.worst_failing() is not None
    assert all(spool.fails_at(s) == full.fails_at(s) for s in Severity)
    back = list(spool.results(["0", "1"]))
    assert [r.to_dict() for r in back] == [r.to_dict() for r in full.results]
    with pytest.raises(ValueError):
        spool.add("0", ())
    spool.close()


def test_empty_spool_writes_an_empty_result_list() -> None:
    spool = ResultSpool()
    spool.add("0", ())
    out = io.BytesIO()
    head = Report("audit", (), hosts=("a",), extra=AuditExtra(0, 1), tool_version="0.1.0")
    write_json_stream(head, spool, ["0"], out)
    assert out.getvalue().decode() == render(head, "json")
    assert json.loads(out.getvalue())["results"] == []


def test_atomic_output_leaves_the_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "fleet.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target) as fh:
        fh.write(b"half")
        raise RuntimeError("collector died")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["fleet.json"]
    with atomic_output(target) as fh:
        fh.write(b"new")
    assert target.read_text() == "new"
