"""The Dockerfile parser against BuildKit's documented edge syntax."""

from __future__ import annotations

import pytest

from dockward.errors import InputError
from dockward.lint.dockerfile import expand_vars, parse_dockerfile


def test_directives_escape_and_continuations() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "# escape=`\n"
        "\n"
        "FROM mcr.example/windows:ltsc2022\n"
        "COPY testfile.txt c:\\\n"
        "RUN dir c:\\ `\n"
        "    && echo done\n"
    )
    d = parse_dockerfile(text)
    assert d.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert d.escape == "`"
    copy, run = d.instructions[1], d.instructions[2]
    assert copy.args == "testfile.txt c:\\"
    assert run.args == "dir c:\\     && echo done"
    assert (run.line, run.end_line) == (6, 7)


def test_directive_after_a_comment_is_a_comment() -> None:
    d = parse_dockerfile("# about\n# escape=`\nFROM a:1\nRUN echo \\\n  x\n")
    assert d.directives == {} and d.escape == "\\"
    assert d.instructions[1].args == "echo   x"


def test_comments_and_blank_lines_inside_continuations() -> None:
    text = "FROM a:1\nRUN apt-get update \\\n# comment\n\n    && apt-get install -y x\n"
    [_, run] = parse_dockerfile(text).instructions
    assert run.args == "apt-get update     && apt-get install -y x"
    assert (run.line, run.end_line) == (2, 5)
    words = run.shell_scripts()[0][0].commands[1].words
    loc = run.word_location("Dockerfile", words[2])
    assert (loc.line, loc.column, loc.end_column) == (5, 24, 26)


def test_heredocs() -> None:
    text = (
        "FROM a:1\n"
        "RUN <<EOF\n"
        "apt-get update\n"
        "sudo rm -rf /x\n"
        "EOF\n"
        'COPY <<-"END" /etc/conf\n'
        "\tkey=$value\n"
        "\tEND\n"
        "RUN python3 <<PY\n"
        "import os | sh\n"
        "PY\n"
        "USER 1000\n"
    )
    d = parse_dockerfile(text)
    run, copy, py, user = d.instructions[1:]
    assert run.heredocs[0].body == "apt-get update\nsudo rm -rf /x\n"
    assert (run.line, run.end_line) == (2, 5)
    [(script, smap)] = run.shell_scripts()
    sudo = script.commands[1].words[0]
    loc = run.word_location("D", sudo, smap)
    assert (loc.line, loc.column) == (4, 1)
    assert copy.heredocs[0].strip_tabs and copy.heredocs[0].quoted
    assert copy.heredocs[0].body == "key=$value\n"
    # a python heredoc is not shell
    assert [c.program for s, _ in py.shell_scripts() for c in s.commands] == ["python3"]
    assert user.line == 12


def test_unterminated_heredoc_is_an_error() -> None:
    with pytest.raises(InputError, match=r"Dockerfile:2: unterminated heredoc <<EOF"):
        parse_dockerfile("FROM a:1\nRUN <<EOF\necho hi\n")


def test_stages_args_and_from_substitution() -> None:
    text = (
        "ARG BASE=debian\nARG TAG\n"
        "FROM --platform=$BUILDPLATFORM ${BASE}:${TAG:-12} AS build\n"
        "FROM build AS test\n"
        "FROM scratch\n"
    )
    d = parse_dockerfile(text)
    assert d.global_args == {"BASE": "debian", "TAG": ""}
    assert [(s.base_resolved, s.name, s.platform) for s in d.stages] == [
        ("debian:12", "build", "$BUILDPLATFORM"),
        ("build", "test", ""),
        ("scratch", "", ""),
    ]


def test_json_and_shell_forms_and_flags() -> None:
    text = (
        'FROM a:1\nCMD ["nginx", "-g", "daemon off;"]\nENTRYPOINT [not json\n'
        "RUN --mount=type=cache,target=/var/cache/apt --network=none apt-get update\n"
        'COPY --chown=1000:1000 --from=build ["/a b", "/c"]\n'
    )
    d = parse_dockerfile(text)
    cmd, ep, run, copy = d.instructions[1:]
    assert cmd.json_args == ("nginx", "-g", "daemon off;")
    assert ep.json_args is None and ep.args == "[not json"
    assert run.flags == (("mount", "type=cache,target=/var/cache/apt"), ("network", "none"))
    assert run.args == "apt-get update"
    assert copy.flag("from") == "build" and copy.json_args == ("/a b", "/c")


def test_onbuild() -> None:
    d = parse_dockerfile("FROM a:1\nONBUILD RUN sudo make\n")
    inner = d.instructions[1].onbuild
    assert inner is not None and inner.keyword == "RUN" and inner.args == "sudo make"
    with pytest.raises(InputError, match="ONBUILD"):
        parse_dockerfile("FROM a:1\nONBUILD FROM b\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM a:1\nFROBNICATE x\n", r"Dockerfile:2: unknown instruction: FROBNICATE"),
        ("RUN echo\n", r"Dockerfile:1: RUN before the first FROM"),
        ("# escape=x\nFROM a\n", r"Dockerfile:1: invalid escape token"),
        ("FROM a:1\nRUN\n", r"Dockerfile:2: RUN needs arguments"),
        ("FROM a b c d\n", r"FROM takes an image"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_dockerfile(text)


def test_crlf_and_case_insensitive_keywords() -> None:
    d = parse_dockerfile("from a:1\r\nrun echo hi\r\n")
    assert [i.keyword for i in d.instructions] == ["FROM", "RUN"]
    assert d.instructions[1].args == "echo hi"


def test_expand_vars() -> None:
    env = {"A": "1", "E": ""}
    assert expand_vars("$A-${A}-${B:-d}-${E:-e}-${E-f}-${A:+x}-${B:+y}", env) == "1-1-d-e--x-"
