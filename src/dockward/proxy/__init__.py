"""Docker socket proxy: strict HTTP, route names, policy enforcement, decision log.

The server lives in `dockward.proxy.runner` (`run_proxy`, `ProxyConfig`). The route table lives
in `dockward.policy.routes`: the policy schema names routes and the proxy matches them, so the
dependency runs one way, proxy -> policy.
"""

from dockward.policy.routes import ROUTE_NAMES, ROUTES, match_route
from dockward.proxy.paths import PathError, Target, parse_target

__all__ = ["ROUTES", "ROUTE_NAMES", "PathError", "Target", "match_route", "parse_target"]
