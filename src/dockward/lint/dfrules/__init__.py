"""Dockerfile rules (DW-B0xx): one RuleSet of kind "dockerfile", checks over a parsed Dockerfile."""

from dockward.lint.dfrules import instructions, run
from dockward.lint.dfrules.support import rules

__all__ = ["instructions", "rules", "run"]
