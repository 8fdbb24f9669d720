"""OSV ingest -> SQLite; version comparison per ecosystem; matcher."""

from dockward.vulndb.match import Match, match_packages
from dockward.vulndb.store import (
    DatabaseError,
    DbStatus,
    ImportStats,
    default_db_path,
    import_path,
    open_db,
    status,
)
from dockward.vulndb.update import DEFAULT_ECOSYSTEMS, DEFAULT_URL, UpdateError, update_db
from dockward.vulndb.versions import VersionError, comparator

__all__ = [
    "DEFAULT_ECOSYSTEMS",
    "DEFAULT_URL",
    "DatabaseError",
    "DbStatus",
    "ImportStats",
    "Match",
    "UpdateError",
    "VersionError",
    "comparator",
    "default_db_path",
    "import_path",
    "match_packages",
    "open_db",
    "status",
    "update_db",
]
