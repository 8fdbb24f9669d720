"""The admission-policy gate: the proxy's policy file judges the container as it would be updated.

The same `judge_container` the socket proxy applies to `POST /containers/create` runs over the
replacement's ContainerSpec (new image, old configuration), so an update is admitted exactly when
creating that container through the proxy would be.
"""

from __future__ import annotations

from collections.abc import Sequence

from dockward.engine import Endpoint
from dockward.model.finding import Result
from dockward.policy.admission import ImageGate, judge_container
from dockward.policy.model import load_policy
from dockward.policy.vulns import default_source
from dockward.update.gates import Candidate, ResultsGate


def policy_gate(path: str, endpoint: Endpoint) -> ResultsGate:
    """A gate from a policy file (one-line ConfigError when it is invalid)."""
    admission = load_policy(path).admission
    if endpoint.local:
        from dockward.proxy.runner import local_digest_lookup, local_image_lookup

        image_gate = ImageGate(
            vulns=default_source(),
            local_digest=local_digest_lookup(endpoint.socket_path),
            local_image=local_image_lookup(endpoint.socket_path),
        )
    else:
        image_gate = ImageGate(vulns=default_source())

    def judge(candidate: Candidate) -> Sequence[Result]:
        return judge_container(
            candidate.new_spec, admission, f"container {candidate.container}", gate=image_gate
        )

    return ResultsGate(judge, name="policy")
