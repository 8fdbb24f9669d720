"""`daemon harden` proposes what the daemon rules declare as their fix, and nothing else.

The fix of each daemon rule is declared with the rule (`RuleSet.rule(fix=...)`); harden keeps no
table of rule ids. Every rule with a fix must be reachable (its failing example gets a proposal
naming it) and everything harden proposes must name a registered rule that declares it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dockward.harden.daemon import DaemonOptions, DaemonPlan, plan
from dockward.model.host import HostSnapshot
from dockward.rules.daemon import rules as daemon_rules
from dockward.rules.registry import RuleEntry

HARDEN = Path(__file__).resolve().parents[2] / "src" / "dockward" / "harden"
WITH_FIX = [e for e in daemon_rules if e.fix is not None]


def _plan(
    tmp_path: Path, snap: HostSnapshot, options: DaemonOptions, *, empty: bool = False
) -> DaemonPlan:
    """A plan for `snap` with its settings as the daemon.json on disk (the plan reads the file),
    or an empty daemon.json."""
    cfg = tmp_path / "daemon.json"
    settings = {} if empty else {k: s.value for k, s in snap.daemon.settings.items()}
    cfg.write_text(json.dumps(settings))
    (tmp_path / "subuid").write_text("dockremap:100000:65536\n")
    (tmp_path / "subgid").write_text("dockremap:100000:65536\n")
    return plan(
        snap,
        options,
        str(cfg),
        subuid=str(tmp_path / "subuid"),
        subgid=str(tmp_path / "subgid"),
        nofile_ceiling=1 << 20,
    )


def _options(tmp_path: Path) -> DaemonOptions:
    """Every choice a user can make, so that every fix has what it needs (journald: the
    examples' daemon.json names syslog already)."""
    profile = tmp_path / "seccomp.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ERRNO"}))
    return DaemonOptions(log_driver="journald", ip="127.0.0.1", seccomp_profile=str(profile))


def _named(p: DaemonPlan) -> set[str]:
    return {c.rule for c in p.changes} | {b.rule for b in p.blocked} | {m.rule for m in p.manual}


def test_the_daemon_rules_declare_fixes() -> None:
    # The test can fail: with no fix declared, the reachability test below checks nothing.
    assert len(WITH_FIX) >= 10


@pytest.mark.parametrize("entry", WITH_FIX, ids=[e.rule.id for e in WITH_FIX])
def test_every_fix_is_reachable(entry: RuleEntry, tmp_path: Path) -> None:
    assert entry.examples is not None, f"{entry.rule.id}: a rule with a fix needs examples"
    failing, passing = entry.examples()
    options = _options(tmp_path)
    # Some examples fail on what dockerd reports (/info) while their daemon.json already holds
    # the fix (a restart is due): from an empty file the fix is proposed again.
    assert entry.rule.id in _named(_plan(tmp_path, failing, options)) | _named(
        _plan(tmp_path, failing, options, empty=True)
    )
    # The passing example is the hardened host: nothing left to propose for the rule.
    fixed = _plan(tmp_path, passing, options)
    assert entry.rule.id not in {c.rule for c in fixed.changes if c.key != "seccomp-profile"}


def test_everything_proposed_names_a_rule_that_declares_it(tmp_path: Path) -> None:
    declared = {e.rule.id for e in WITH_FIX}
    manual = {e.rule.id for e in daemon_rules if "manual-fix" in e.rule.groups}
    named: set[str] = set()
    for entry in daemon_rules:
        if entry.examples is None:
            continue
        for snap in entry.examples():
            for options in (DaemonOptions(), _options(tmp_path)):
                p = _plan(tmp_path, snap, options)
                named |= {c.rule for c in p.changes} | {b.rule for b in p.blocked}
                assert {m.rule for m in p.manual} <= manual | declared
    named.discard("")  # a mitigation (log rotation): proposed without making a rule pass
    assert named and named <= declared, sorted(named - declared)


def test_harden_keeps_no_table_of_rule_ids() -> None:
    # A rule id as a string literal in harden/ is a fix kept beside the registry.
    literal = re.compile(r"""["']DW-[A-Z]\d{3}["']""")
    found = [
        f"{path.name}:{n}"
        for path in sorted(HARDEN.glob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert not found, found
