"""The base errors. Library code raises these; only the CLI maps them to exit codes."""


class DockwardError(Exception):
    """A problem the user can fix: bad input, bad config, unreachable daemon (exit 2)."""


class UsageError(DockwardError):
    """A flag or argument that makes no sense."""


class ConfigError(DockwardError):
    """A malformed or contradictory configuration file."""


class ConnectionFailed(DockwardError):
    """The Docker daemon (or another peer) cannot be reached."""


class InputError(DockwardError):
    """A malformed or hostile input file, archive or request."""
