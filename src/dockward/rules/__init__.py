"""Rules: pure checks over the models, gathered into one explicit registry."""

from dockward.rules.registry import (
    Context,
    Fail,
    Info,
    Outcome,
    Pass,
    RuleEntry,
    RuleSet,
    Skip,
    run_check,
)

__all__ = [
    "Context",
    "Fail",
    "Info",
    "Outcome",
    "Pass",
    "RuleEntry",
    "RuleSet",
    "Skip",
    "run_check",
]
