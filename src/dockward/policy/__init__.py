"""One policy for admission everywhere: the proxy, `dockward policy check`, and CI."""

from dockward.policy.admission import ImageGate, judge_container, judge_image, judge_request
from dockward.policy.model import (
    Admission,
    ClientRule,
    ImagePolicy,
    Policy,
    load_policy,
    parse_policy,
)

__all__ = [
    "Admission",
    "ClientRule",
    "ImageGate",
    "ImagePolicy",
    "Policy",
    "judge_container",
    "judge_image",
    "judge_request",
    "load_policy",
    "parse_policy",
]
