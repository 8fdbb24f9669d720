"""The rule language: operators, transformers, lists, macros, append/override, exceptions."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

from dockward.monitor import Priority, RulesError, compile_book, load_text
from dockward.monitor.engine import Engine

BASE: dict[str, Any] = {
    "evt.source": "syscall",
    "evt.type": "execve",
    "evt.dir": "<",
    "proc.name": "bash",
    "proc.exepath": "/usr/bin/bash",
    "proc.cmdline": "bash -c Cat /ETC/Shadow",
    "proc.pname": "sshd",
    "proc.aname": ["sshd", "systemd"],
    "proc.tty": 34816,
    "user.uid": 1000,
    "fd.name": "/etc/ssh/sshd_config",
    "container.id": "0123456789ab",
    "container.privileged": False,
    "container.failed_rules": ["DW-C004", "DW-C011"],
    "container.mount_list": [{"source": "/var/run/docker.sock", "dest": "/run/docker.sock"}],
    "container.label_map": {"app": "web"},
}


def engine_for(condition: str, extra: str = "", source: str = "syscall") -> Engine:
    text = textwrap.dedent(extra) + textwrap.dedent(
        f"""
        - rule: r
          desc: test
          condition: {json.dumps(condition)}
          output: "fired %proc.name"
          priority: WARNING
          source: {source}
        """
    )
    return compile_book(load_text(text, "t.yaml"))


def fires(condition: str, event: dict[str, Any] | None = None, extra: str = "") -> bool:
    eng = engine_for(condition, extra)
    assert not eng.disabled, eng.disabled
    return bool(eng.match(dict(BASE if event is None else event)))


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("proc.name = bash", True),
        ("proc.name == bash", True),
        ("proc.name = sh", False),
        ("proc.name != sh", True),
        ("proc.name != bash", False),
        ("user.uid < 1001", True),
        ("user.uid < 1000", False),
        ("user.uid <= 1000", True),
        ("user.uid <= 999", False),
        ("user.uid > 999", True),
        ("user.uid > 1000", False),
        ("user.uid >= 1000", True),
        ("user.uid >= 1001", False),
        ("proc.name in (sh, bash)", True),
        ("proc.name in (sh, zsh)", False),
        ("proc.aname intersects (systemd, init)", True),
        ("proc.aname intersects (init)", False),
        ("proc.aname in (systemd, init)", True),  # any ancestor, as in Falco
        ("proc.aname in (init, httpd)", False),
        ("container.failed_rules intersects (DW-C011)", True),
        ("container.failed_rules intersects (DW-C001)", False),
        ("fd.name pmatch (/etc/ssh)", True),
        ("fd.name pmatch (/etc/ss)", False),
        ("proc.cmdline contains Cat", True),
        ("proc.cmdline contains cat", False),
        ("proc.cmdline icontains /etc/shadow", True),
        ("proc.cmdline icontains passwd", False),
        ("proc.exepath startswith /usr/", True),
        ("proc.exepath startswith /bin/", False),
        ("proc.exepath endswith /bash", True),
        ("proc.exepath endswith /sh", False),
        ("proc.exepath glob '/usr/*/ba?h'", True),
        ("proc.exepath glob '/bin/*'", False),
        ("proc.exepath iglob '/USR/*'", True),
        ("proc.cmdline regex '^bash -c [A-Z]'", True),
        ("proc.cmdline regex '^sh'", False),
        ("proc.name exists", True),
        ("fd.sip exists", False),
        ("proc.name bcontains 6173", True),
        ("proc.name bcontains 7a7a", False),
        ("proc.name bstartswith 6261", True),
        ("proc.name startswith oneof (zs, ba)", True),
        ("proc.name startswith oneof (zs, k)", False),
        ("tolower(proc.cmdline) contains /etc/shadow", True),
        ("toupper(proc.name) = BASH", True),
        ("toupper(proc.name) = bash", False),
        ("basename(proc.exepath) = bash", True),
        ("basename(proc.exepath) = usr", False),
        ("len(proc.name) = 4", True),
        ("len(proc.name) > 4", False),
        ("tolower(basename(proc.exepath)) = bash", True),
        ("proc.aname[1] = sshd", True),
        ("proc.aname[2] = systemd", True),
        ("proc.aname[2] = sshd", False),
        ("proc.aname[0] = bash", True),
        ("proc.aname[5] exists", False),
        ("container.mount.dest[/var/run/docker.sock] = /run/docker.sock", True),
        ("container.mount.dest[/etc] exists", False),
        ("container.mount.source[/run/docker.sock] startswith /var/run", True),
        ("container.label[app] = web", True),
        ("container.label[tier] exists", False),
        ("container.privileged = false", True),
        ("container.privileged = true", False),
        ("proc.pname = val(proc.pname)", True),
        ("proc.name = val(proc.pname)", False),
        ("evt.dir = <", True),
        ("evt.dir = >", False),
        ("not proc.name = sh", True),
        ("not proc.name = bash", False),
        ("proc.name = sh or proc.name = bash", True),
        ("proc.name = sh or user.uid = 0", False),
        ("proc.name = bash and user.uid = 1000", True),
        ("proc.name = bash and user.uid = 0", False),
        ("(proc.name = sh or proc.name = bash) and not (user.uid = 0)", True),
        ("proc.name='bash' and proc.cmdline contains \"Cat /ETC\"", True),
    ],
)
def test_operators_and_transformers(condition: str, expected: bool) -> None:
    assert fires(condition) is expected


def test_missing_field_is_false_for_every_operator() -> None:
    ev = {"evt.source": "syscall", "evt.type": "execve"}
    for cond in ("proc.name = x", "proc.name != x", "proc.name contains x", "proc.name in (x)"):
        assert fires(cond, ev) is False, cond


def test_lists_nest_and_macros_expand() -> None:
    extra = """
    - list: shells
      items: [sh, zsh]
    - list: all_shells
      items: [shells, bash]
    - macro: spawned
      condition: evt.type = execve and evt.dir = <
    - macro: shell_spawned
      condition: spawned and proc.name in (all_shells)
    """
    assert fires("shell_spawned", extra=extra)
    assert not fires("shell_spawned", {**BASE, "proc.name": "ls"}, extra=extra)


def test_macro_may_be_defined_after_the_rule_that_uses_it() -> None:
    text = """
    - rule: r
      desc: d
      condition: late
      output: o
      priority: INFO
    - macro: late
      condition: proc.name = bash
    """
    eng = compile_book(load_text(textwrap.dedent(text), "t.yaml"))
    assert eng.match(dict(BASE))


def test_list_append_and_override_replace() -> None:
    base = """
    - list: names
      items: [sh]
    - rule: r
      desc: d
      condition: proc.name in (names)
      output: o
      priority: INFO
    """
    appended = (
        base
        + """
    - list: names
      items: [bash]
      override:
        items: append
    """
    )
    replaced = (
        appended
        + """
    - list: names
      items: [zsh]
      override:
        items: replace
    """
    )
    legacy = (
        base
        + """
    - list: names
      items: [bash]
      append: true
    """
    )
    assert compile_book(load_text(textwrap.dedent(appended), "t")).match(dict(BASE))
    assert compile_book(load_text(textwrap.dedent(legacy), "t")).match(dict(BASE))
    assert not compile_book(load_text(textwrap.dedent(replaced), "t")).match(dict(BASE))
    assert not compile_book(load_text(textwrap.dedent(base), "t")).match(dict(BASE))


def test_rule_override_append_condition_and_replace_priority() -> None:
    text = """
    - rule: r
      desc: d
      condition: proc.name = bash
      output: o
      priority: INFO
    - rule: r
      condition: and user.uid = 0
      priority: CRITICAL
      override:
        condition: append
        priority: replace
    """
    eng = compile_book(load_text(textwrap.dedent(text), "t"))
    assert not eng.match(dict(BASE))
    matches = eng.match({**BASE, "user.uid": 0})
    assert matches and matches[0].rule.priority is Priority.CRITICAL


def test_macro_override_append() -> None:
    text = """
    - macro: m
      condition: proc.name = bash
    - macro: m
      condition: and user.uid = 0
      override:
        condition: append
    - rule: r
      desc: d
      condition: m
      output: o
      priority: INFO
    """
    eng = compile_book(load_text(textwrap.dedent(text), "t"))
    assert not eng.match(dict(BASE))
    assert eng.match({**BASE, "user.uid": 0})


def test_enabled_false_disables_and_bare_enabled_toggles() -> None:
    text = """
    - rule: r
      desc: d
      condition: proc.name = bash
      output: o
      priority: INFO
    - rule: r
      enabled: false
    """
    assert not compile_book(load_text(textwrap.dedent(text), "t")).rules
    again = (
        text
        + """
    - rule: r
      enabled: true
    """
    )
    assert compile_book(load_text(textwrap.dedent(again), "t")).rules


def test_exceptions_tuples_single_field_and_appended_values() -> None:
    text = """
    - rule: r
      desc: d
      condition: proc.name in (bash, sh)
      output: o
      priority: INFO
      exceptions:
        - name: known_parent
          fields: [proc.name, proc.pname]
          comps: [=, in]
          values:
            - [bash, [sshd, login]]
        - name: by_exe
          fields: proc.exepath
          comps: pmatch
          values: [/opt/tools]
    """
    eng = compile_book(load_text(textwrap.dedent(text), "t"))
    assert not eng.match(dict(BASE)), "bash under sshd is excepted"
    assert eng.match({**BASE, "proc.pname": "cron"})
    assert not eng.match({**BASE, "proc.pname": "cron", "proc.exepath": "/opt/tools/bash"})
    assert eng.match({**BASE, "proc.name": "sh"}), "the tuple needs both fields"
    appended = (
        text
        + """
    - rule: r
      exceptions:
        - name: known_parent
          values:
            - [sh, [sshd]]
      override:
        exceptions: append
    """
    )
    eng2 = compile_book(load_text(textwrap.dedent(appended), "t"))
    assert not eng2.match({**BASE, "proc.name": "sh"})
    assert eng2.match({**BASE, "proc.name": "sh", "proc.pname": "cron"})


def test_unknown_field_disables_only_that_rule_with_a_warning() -> None:
    text = """
    - rule: good
      desc: d
      condition: proc.name = bash
      output: o
      priority: INFO
    - rule: typo
      desc: d
      condition: proc.nmae = bash
      output: o
      priority: INFO
    - rule: unsupported
      desc: d
      condition: thread.cap_inheritable contains CAP_SYS_ADMIN
      output: o
      priority: INFO
    - rule: other source
      desc: d
      condition: ka.verb = create
      output: o
      priority: INFO
      source: k8s_audit
    - rule: wrong source field
      desc: d
      condition: docker.action = start
      output: o
      priority: INFO
    """
    eng = compile_book(load_text(textwrap.dedent(text), "rules.yaml"))
    assert [r.name for r in eng.rules] == ["good"]
    assert "unknown field proc.nmae" in eng.disabled["typo"]
    assert "thread.cap_inheritable is not provided" in eng.disabled["unsupported"]
    assert "unknown source k8s_audit" in eng.disabled["other source"]
    assert "not available for source syscall" in eng.disabled["wrong source field"]
    assert any("rules.yaml:" in w and "'typo'" in w and "proc.nmae" in w for w in eng.warnings)
    assert eng.match(dict(BASE))


def test_unknown_output_field_disables_but_unsupported_renders_na() -> None:
    text = """
    - rule: bad output
      desc: d
      condition: proc.name = bash
      output: "x=%proc.nope"
      priority: INFO
    - rule: na output
      desc: d
      condition: proc.name = bash
      output: "caps=%thread.cap_effective name=%proc.name."
      priority: INFO
    """
    eng = compile_book(load_text(textwrap.dedent(text), "t"))
    assert "proc.nope" in eng.disabled["bad output"]
    [m] = eng.match(dict(BASE))
    assert m.output == "caps=<NA> name=bash."


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            "- rule: r\n  desc: d\n  condition: proc.name = (\n  output: o\n  priority: INFO\n",
            ":1:",
            "condition",
        ),
        (
            "- list: l\n  items: [a]\n- rule: r\n  condition: proc.name = a\n  output: o\n",
            ":3:",
            "missing priority",
        ),
        (
            "- rule: r\n  desc: d\n  condition: a\n  output: o\n  priority: LOUD\n",
            ":1:",
            "unknown priority",
        ),
        ("- macro: m\n  condition: proc.name in (a,\n", ":1:", "macro m"),
        ("- list: l\n  items: [a]\n  append: true\n", ":1:", "never defined"),
        (
            "- rule: r\n  condition: and x = 1\n  override:\n    condition: append\n",
            ":1:",
            "never defined",
        ),
        (
            "- rule: r\n  desc: d\n  condition: proc.name = a\n  output: o\n  priority: INFO\n"
            "- rule: r\n  priority: INFO\n  override:\n    priority: append\n",
            ":6:",
            "cannot be overridden",
        ),
        (
            "- rule: r\n  desc: d\n  condition: a\n  output: o\n  priority: INFO\n  exceptions:\n"
            "    - name: e\n      fields: [proc.name, proc.pname]\n      values: [[a]]\n",
            ":1:",
            "2 items",
        ),
        ("- rule: r\n  desc: [unclosed\n", ":3:", "invalid YAML"),
        ("rule: not a list\n", ":1:", "YAML list"),
    ],
)
def test_malformed_files_name_file_and_line(text: str, where: str, message: str) -> None:
    with pytest.raises(RulesError) as info:
        load_text(text, "bad.yaml")
    assert str(info.value).startswith("bad.yaml" + where), str(info.value)
    assert message in str(info.value)


def test_rules_are_indexed_by_event_type() -> None:
    text = """
    - macro: spawned
      condition: evt.type in (execve, execveat)
    - rule: exec
      desc: d
      condition: spawned and proc.name = bash
      output: o
      priority: INFO
    - rule: open
      desc: d
      condition: evt.type = openat and fd.name = /etc/shadow
      output: o
      priority: INFO
    - rule: any
      desc: d
      condition: proc.name = bash
      output: o
      priority: INFO
    """
    eng = compile_book(load_text(textwrap.dedent(text), "t"))
    names = lambda ev: [r.name for r in eng.candidates(ev)]  # noqa: E731
    assert names(dict(BASE)) == ["exec", "any"]
    assert names({**BASE, "evt.type": "openat"}) == ["open", "any"]
    assert names({**BASE, "evt.type": "connect"}) == ["any"]


def test_rule_matching_first_stops_at_the_first_rule() -> None:
    text = """
    - rule: a
      desc: d
      condition: proc.name = bash
      output: o
      priority: INFO
    - rule: b
      desc: d
      condition: proc.name = bash
      output: o
      priority: INFO
    """
    book = load_text(textwrap.dedent(text), "t")
    assert len(compile_book(book, match_all=True).match(dict(BASE))) == 2
    assert [m.rule.name for m in compile_book(book, match_all=False).match(dict(BASE))] == ["a"]


def test_min_priority_filters_rules() -> None:
    text = """
    - rule: low
      desc: d
      condition: proc.name = bash
      output: o
      priority: DEBUG
    - rule: high
      desc: d
      condition: proc.name = bash
      output: o
      priority: ERROR
    """
    eng = compile_book(load_text(textwrap.dedent(text), "t"), Priority.WARNING)
    assert [r.name for r in eng.rules] == ["high"]


def test_output_renders_fields_and_collects_them() -> None:
    eng = engine_for("proc.name = bash")
    [m] = eng.match(dict(BASE))
    assert m.output == "fired bash"
    assert m.fields == {"proc.name": "bash"}


def test_self_referencing_macro_disables_rule() -> None:
    text = """
    - macro: loop
      condition: loop and proc.name = a
    - rule: r
      desc: d
      condition: loop
      output: o
      priority: INFO
    """
    eng = compile_book(load_text(textwrap.dedent(text), "t"))
    assert "refers to itself" in eng.disabled["r"]


def test_quoted_list_items_and_falco_yaml_quirks() -> None:
    text = """
    - list: known_cmdlines
      items: ['"bash -c Cat /ETC/Shadow"', "'sh -c x'"]
    - rule: r
      desc: d
      condition: proc.cmdline in (known_cmdlines) and proc.name!="<NA>"
      output: "%container.info"
      priority:
        WARNING
    """
    eng = compile_book(load_text(textwrap.dedent(text), "t"))
    [m] = eng.match(dict(BASE))
    assert m.output == "container_id=0123456789ab container_name=<NA>"


def test_rules_on_event_types_no_source_produces_are_disabled() -> None:
    eng = engine_for("evt.type = mprotect and proc.name = bash")
    assert "evt.type mprotect is not produced" in eng.disabled["r"]


def test_values_of_unexpected_types_never_crash_matching() -> None:
    eng = engine_for("proc.name in (bash, sh) or proc.cmdline contains x")
    hostile = {**BASE, "proc.name": ["not", "hashable"], "proc.cmdline": 42}
    assert eng.match(hostile) == []
    assert eng.match(dict(BASE))
