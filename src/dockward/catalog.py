"""The rule catalogue: every rule the capabilities define, gathered for the commands.

It sits above the capabilities (lint, scan, policy, update, fleet import `dockward.rules`, and
this module imports them), so only the CLI and other top-level users import it: a capability
takes the rule sets it needs directly (`dockward.rules.container.rules`) or as a parameter.
"""

from __future__ import annotations

from dockward.rules.registry import RuleSet


def default_rules() -> RuleSet:
    """Every built-in rule, merged from the rule modules (duplicate ids are an error)."""
    from dockward.lint.dfrules import rules as dockerfile_rules
    from dockward.rules import container, daemon, files, host, image
    from dockward.scan.rules import rules as image_content_rules

    merged = RuleSet("dockward")
    for module_rules in (
        host.rules,
        daemon.rules,
        files.rules,
        image.rules,
        container.rules,
        dockerfile_rules,
        image_content_rules,
    ):
        merged.extend(module_rules)
    return merged


def all_rules() -> RuleSet:
    """Every rule id a command can emit: the checks of `default_rules()` and the rules whose
    results a command builds itself (policy and proxy DW-P, update DW-U, lint input DW-L,
    scan's vulnerability family DW-V, the fleet runner's DW-N). `dockward rules list` prints this."""
    from dockward.fleet import UNREACHABLE
    from dockward.lint.engine import INPUT_RULE
    from dockward.policy.checks import POLICY_RULES
    from dockward.scan.rules import VULNERABILITY
    from dockward.update.report import RULES as UPDATE_RULES

    return default_rules().extend(
        RuleSet("emitted").declare(
            INPUT_RULE, *POLICY_RULES, *UPDATE_RULES, VULNERABILITY, UNREACHABLE
        )
    )


__all__ = ["all_rules", "default_rules"]
