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


def default_rules() -> RuleSet:
    """Every built-in rule, merged from the rule modules (duplicate ids are an error)."""
    from dockward.lint.dfrules import rules as dockerfile_rules
    from dockward.rules import container, daemon, files, host, image

    merged = RuleSet("dockward")
    for module_rules in (
        host.rules,
        daemon.rules,
        files.rules,
        image.rules,
        container.rules,
        dockerfile_rules,
    ):
        merged.extend(module_rules)
    return merged


__all__ = [
    "Context",
    "Fail",
    "Info",
    "Outcome",
    "Pass",
    "RuleEntry",
    "RuleSet",
    "Skip",
    "default_rules",
    "run_check",
]
