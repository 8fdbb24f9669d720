"""The input layer: every way a container is described becomes one `ContainerSpec` here.

Sources: an inspect document (`from_inspect`, lenient), a compose service
(`from_compose_service`), a `docker run`/`docker create` argument vector (`from_run_argv`,
`from_run_line`), Engine API request bodies (`from_create_body` and the update, exec and service
bodies, strict) and a hardened proposal (`from_proposal`). The HostConfig mapping exists once
(`dockward.specs.hostconfig`), read strictly for bodies and leniently for inspect.
`model/` sits below this layer; lint, policy, proxy, audit, harden and update sit above it.
"""

from __future__ import annotations

from dockward.specs.bodies import (
    container_from_create_body as from_create_body,
)
from dockward.specs.bodies import (
    container_from_exec_body as from_exec_body,
)
from dockward.specs.bodies import (
    container_from_service_body as from_service_body,
)
from dockward.specs.bodies import (
    container_from_update_body as from_update_body,
)
from dockward.specs.bodies import unmodelled_grants
from dockward.specs.compose import service_to_spec as from_compose_service
from dockward.specs.gojson import BodyError, loads
from dockward.specs.inspect import from_inspect
from dockward.specs.proposal import from_proposal
from dockward.specs.runargv import run_argv_to_spec as from_run_argv
from dockward.specs.runargv import spec_from_run_line as from_run_line

__all__ = [
    "BodyError",
    "from_compose_service",
    "from_create_body",
    "from_exec_body",
    "from_inspect",
    "from_proposal",
    "from_run_argv",
    "from_run_line",
    "from_service_body",
    "from_update_body",
    "loads",
    "unmodelled_grants",
]
