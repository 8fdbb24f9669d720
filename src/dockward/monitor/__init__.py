"""dockward monitor: Falco-style runtime detection on a Docker host, alerts to a SIEM."""

from dockward.monitor.engine import Engine, compile_book, default_rules_path, load_engine
from dockward.monitor.loader import Priority, RuleBook, RulesError, load_files, load_text
from dockward.monitor.runner import MonitorConfig, RunSummary, build_engine, run_live, run_replay

__all__ = [
    "Engine",
    "MonitorConfig",
    "Priority",
    "RuleBook",
    "RulesError",
    "RunSummary",
    "build_engine",
    "compile_book",
    "default_rules_path",
    "load_engine",
    "load_files",
    "load_text",
    "run_live",
    "run_replay",
]
