"""`dockward update`: keep containers on current images, behind gates, never losing one."""

from dockward.registry import (
    Credentials,
    CredentialStore,
    ImageRef,
    Platform,
    RegistryClient,
    RegistryError,
    parse_reference,
)
from dockward.update.apply import Applied, Recovered, UpdateFailed, UpdateOptions, Updater
from dockward.update.check import CheckResult, check_all
from dockward.update.cycle import CycleOptions, CycleResult, Event, run_cycle
from dockward.update.gates import (
    Candidate,
    ContainerRulesGate,
    Gate,
    ResultsGate,
    Verdict,
    Vulnerability,
    VulnerabilityGate,
    run_gates,
)
from dockward.update.journal import Journal, default_state_dir
from dockward.update.recreate import CreatePlan, expected_spec, plan_recreate
from dockward.update.select import Managed, Selection, select

__all__ = [
    "Applied",
    "Candidate",
    "CheckResult",
    "ContainerRulesGate",
    "CreatePlan",
    "CredentialStore",
    "Credentials",
    "CycleOptions",
    "CycleResult",
    "Event",
    "Gate",
    "ImageRef",
    "Journal",
    "Managed",
    "Platform",
    "Recovered",
    "RegistryClient",
    "RegistryError",
    "ResultsGate",
    "Selection",
    "UpdateFailed",
    "UpdateOptions",
    "Updater",
    "Verdict",
    "Vulnerability",
    "VulnerabilityGate",
    "check_all",
    "default_state_dir",
    "expected_spec",
    "parse_reference",
    "plan_recreate",
    "run_cycle",
    "run_gates",
    "select",
]
