"""Docker socket proxy: strict HTTP, route names, policy enforcement, decision log.

The server lives in `dockward.proxy.runner` (`run_proxy`, `ProxyConfig`); this package root
stays import-light because the policy schema names routes from `dockward.proxy.routes`.
"""

from dockward.proxy.paths import PathError, Target, parse_target
from dockward.proxy.routes import ROUTE_NAMES, ROUTES, match_route

__all__ = ["ROUTES", "ROUTE_NAMES", "PathError", "Target", "match_route", "parse_target"]
