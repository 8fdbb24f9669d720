"""A fleet run's results kept on disk as each host finishes, and its JSON report streamed from
there: memory stays bounded by the hosts in flight, not by the size of the fleet."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any

from dockward.model.finding import SCHEMA_VERSION, Report, Result, Rule, Severity, Status
from dockward.util.fs import atomic_output

_SEP = b",\n    "


class ResultSpool:
    """Results written host by host to an unnamed temporary file (gone with the process), with
    what the report's summary needs counted on the way: counts, score, worst failing severity,
    the rules seen (one object per rule id)."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="dockward-spool-")  # noqa: SIM115 - closed by close()
        self._parts: dict[str, tuple[int, int]] = {}
        self.rules: dict[str, Rule] = {}
        self.counts: dict[str, int] = {s.value: 0 for s in Status}
        self.counts["waived"] = 0
        self.failing: dict[Severity, int] = dict.fromkeys(Severity, 0)
        self._judged = 0
        self._passed = 0

    def add(self, key: str, results: Iterable[Result]) -> None:
        """Spool KEY's results (a key once: its part is what the report shows for it)."""
        if key in self._parts:
            raise ValueError(f"{key} spooled twice")
        lines = []
        for r in results:
            self.rules.setdefault(r.rule.id, r.rule)
            self.counts["waived" if r.waived else r.status.value] += 1
            if r.failing:
                self.failing[r.severity] += 1
            if (
                r.rule.scored
                and not r.waived
                and r.status in (Status.PASS, Status.FAIL, Status.ERROR)
            ):
                self._judged += 1
                self._passed += r.status is Status.PASS
            lines.append(json.dumps(r.to_dict(), default=str).encode())
        offset = self._file.seek(0, os.SEEK_END)
        data = _SEP.join(lines)
        self._file.write(data)
        self._parts[key] = (offset, len(data))

    def score(self) -> float:
        """As Report.score over every spooled result."""
        return round(100.0 * self._passed / self._judged, 1) if self._judged else 100.0

    def worst_failing(self) -> Severity | None:
        return max((s for s, n in self.failing.items() if n), default=None)

    def fails_at(self, threshold: Severity) -> bool:
        worst = self.worst_failing()
        return worst is not None and worst >= threshold

    def _part(self, key: str) -> bytes:
        offset, length = self._parts[key]
        self._file.seek(offset)
        return self._file.read(length)

    def chunks(self, keys: Sequence[str]) -> Iterator[bytes]:
        """The JSON results of KEYS, in that order, one host's part at a time."""
        first = True
        for key in keys:
            if key not in self._parts or not self._parts[key][1]:
                continue
            if not first:
                yield _SEP
            first = False
            yield self._part(key)

    def results(self, keys: Sequence[str]) -> Iterator[Result]:
        """Read back (for formats that need every result at once)."""
        from dockward.report.jsonfmt import _result

        for key in keys:
            if key in self._parts and self._parts[key][1]:
                for d in json.loads(b"[" + self._part(key) + b"]"):
                    yield _result(d, self.rules)

    def close(self) -> None:
        self._file.close()


def write_json_stream(
    head: Report, spool: ResultSpool, keys: Sequence[str], out: IO[bytes]
) -> None:
    """HEAD's metadata (its results are in SPOOL) as the `--format json` document, the summary
    from the spool's counts, results copied from the spool in the order of KEYS."""
    from dockward.report.jsonfmt import SCHEMA_ID

    worst = spool.worst_failing()
    doc: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "dockward", "version": head.tool_version},
        "command": head.command,
        "started": head.started,
        "finished": head.finished,
        "hosts": list(head.hosts),
        "summary": {
            "counts": dict(spool.counts),
            "score": spool.score(),
            "worst_failing_severity": worst.label if worst is not None else None,
        },
        "warnings": list(head.warnings),
        "rules": {rid: rule.to_dict() for rid, rule in sorted(spool.rules.items())},
        "extra": head.extra.to_dict(),
    }
    # The layout of render_json: the document, then one result per line.
    text = json.dumps(doc, indent=2, default=str)[:-2]
    chunks = spool.chunks(keys)
    first = next(chunks, None)
    if first is None:
        out.write(f'{text},\n  "results": []\n}}\n'.encode())
        return
    out.write(f'{text},\n  "results": [\n    '.encode())
    out.write(first)
    for chunk in chunks:
        out.write(chunk)
    out.write(b"\n  ]\n}\n")


def write_streamed(output: str | None, produce: Callable[[Callable[[str], object]], None]) -> None:
    """Text PRODUCE writes piece by piece, to OUTPUT (whole or not at all) or to stdout."""
    import sys

    from dockward.errors import DockwardError

    if not output or output == "-":
        produce(sys.stdout.write)
        sys.stdout.flush()
        return
    try:
        with atomic_output(output) as fh:
            produce(lambda text: fh.write(text.encode("utf-8")))
    except OSError as exc:
        raise DockwardError(f"cannot write {output}: {exc.strerror}") from exc


__all__ = ["ResultSpool", "atomic_output", "write_json_stream", "write_streamed"]
