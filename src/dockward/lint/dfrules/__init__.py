"""Lint rules: Dockerfile rules (DW-B0xx, kind "dockerfile") and compose-only rules (DW-K0xx,
kind "compose") in one RuleSet. Container settings are judged by the audit's DW-C rules."""

from dockward.lint.dfrules import compose, instructions, run
from dockward.lint.dfrules.support import rules

__all__ = ["compose", "instructions", "rules", "run"]
