"""What the Dockerfile rules share: the registry, walking stages and RUN commands, examples."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

from dockward.lint.dockerfile import Dockerfile, Instruction, SourceMap, Stage, parse_dockerfile
from dockward.lint.shell import Command, Script, Word
from dockward.model.finding import Location, Severity
from dockward.rules.registry import RuleSet

rules = RuleSet("dockerfile")
KIND = "dockerfile"
CRIT, HIGH, MED, LOW, INFO = (
    Severity.CRITICAL,
    Severity.HIGH,
    Severity.MEDIUM,
    Severity.LOW,
    Severity.INFO,
)

GOOD = """\
FROM registry.example/base:1.2.3
HEALTHCHECK CMD ["/app", "--health"]
USER 1000:1000
"""


def df(text: str) -> Dockerfile:
    return parse_dockerfile(text, "Dockerfile")


def ex(bad: str, good: str = GOOD) -> tuple[Dockerfile, Dockerfile]:
    return df(bad), df(good)


@dataclass(frozen=True, slots=True)
class RunCommand:
    """One shell command of a RUN instruction, and how to locate its words in the file."""

    instruction: Instruction
    command: Command
    script: Script
    smap: SourceMap | None
    path: str

    def loc(self, word: Word | None = None) -> Location:
        ins = self.instruction
        if word is None:
            words = self.command.words
            if not words or (self.smap is None and ins.json_args is not None):
                return ins.location(self.path)
            return ins.location_of(self.path, words[0].start, words[-1].end, self.smap)
        if self.smap is None and ins.json_args is not None:
            return ins.location(self.path)
        return ins.word_location(self.path, word, self.smap)

    @property
    def program(self) -> str:
        return self.command.program

    @property
    def args(self) -> tuple[Word, ...]:
        return self.command.args

    def arg_texts(self) -> list[str]:
        return [w.text for w in self.command.args]

    def subcommand(self) -> str:
        """First non-option argument (`install` of `apt-get -q install`)."""
        for w in self.command.args:
            if not w.text.startswith("-"):
                return w.text
        return ""


def instructions(d: Dockerfile, stages: tuple[Stage, ...] | None = None) -> Iterator[Instruction]:
    """Instructions of the given stages (default: all), ONBUILD triggers included."""
    chosen = d.stages if stages is None else stages
    for stage in chosen:
        for ins in stage.instructions:
            yield ins
            if ins.onbuild is not None:
                yield ins.onbuild


def run_commands(d: Dockerfile, stages: tuple[Stage, ...] | None = None) -> list[RunCommand]:
    """Every shell command of every RUN (ONBUILD triggers included), built once per file."""
    cached = d.cache.get("run_commands")
    if cached is None:
        cached = [
            RunCommand(ins, cmd, script, smap, d.path)
            for ins in instructions(d)
            if ins.keyword == "RUN"
            for script, smap in ins.shell_scripts()
            for cmd in script.all_commands()
        ]
        d.cache["run_commands"] = cached
    commands = cast(list[RunCommand], cached)
    if stages is None:
        return commands
    wanted = {s.index for s in stages}
    return [rc for rc in commands if rc.instruction.stage in wanted]


def commands_of(d: Dockerfile, ins: Instruction) -> list[RunCommand]:
    out = []
    for script, smap in ins.shell_scripts():
        for cmd in script.all_commands():
            out.append(RunCommand(ins, cmd, script, smap, d.path))
    return out


def final_stages(d: Dockerfile) -> tuple[Stage, ...]:
    """The final stage and the stages it is built `FROM` (what ships in the image)."""
    if not d.stages:
        return ()
    by_name = {s.name.lower(): s for s in d.stages if s.name}
    chain = [d.stages[-1]]
    for _ in range(len(d.stages)):
        parent = by_name.get(chain[-1].base_resolved.lower())
        if parent is None or parent in chain:
            break
        chain.append(parent)
    return tuple(chain)


def last_in_chain(d: Dockerfile, keyword: str) -> Instruction | None:
    """The last `keyword` instruction that applies to the final image."""
    for stage in final_stages(d):
        for ins in reversed(stage.instructions):
            if ins.keyword == keyword:
                return ins
    return None


def short_flags(word: str) -> str:
    """The letters of a combined short option (`-fsSLk` -> `fsSLk`), else ""."""
    if word.startswith("-") and not word.startswith("--") and len(word) > 1:
        return word[1:]
    return ""
