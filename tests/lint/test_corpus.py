"""The corpus: every file lints without a crash and gives exactly the reviewed findings.

Regenerate `expected.json` after a reviewed change with
`python tests/lint/test_corpus.py --update` (then read the diff).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).parent / "corpus"
EXPECTED = CORPUS / "expected.json"


def _findings() -> list[list[Any]]:
    from dockward.lint.engine import LintOptions, lint

    cwd = os.getcwd()
    os.chdir(CORPUS)
    try:
        report = lint(["."], LintOptions(env={}))
    finally:
        os.chdir(cwd)
    return sorted(
        [
            r.location.path.removeprefix("./") if r.location else "",
            r.location.line if r.location else 0,
            r.location.column if r.location else 0,
            r.rule.id,
            r.status.value,
        ]
        for r in report.results
    )


def test_corpus_findings_are_exactly_the_reviewed_ones() -> None:
    assert _findings() == json.loads(EXPECTED.read_text())


def test_corpus_has_no_internal_errors() -> None:
    for path, _, _, rule, status in _findings():
        assert status != "error" or rule == "DW-L001", path


if __name__ == "__main__":
    if "--update" in sys.argv:
        rows = ",\n".join(json.dumps(x) for x in _findings())
        EXPECTED.write_text(f"[\n{rows}\n]\n")
