"""OSV ingest -> SQLite; version comparison per ecosystem; matcher.

Names are imported on first use: a scan reads the DB and never pays for the downloader's HTTP
stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockward.util.lazy import lazy_attributes

if TYPE_CHECKING:
    from dockward.vulndb.match import (
        Match as Match,
    )
    from dockward.vulndb.match import (
        match_packages as match_packages,
    )
    from dockward.vulndb.store import (
        DatabaseError as DatabaseError,
    )
    from dockward.vulndb.store import (
        DbStatus as DbStatus,
    )
    from dockward.vulndb.store import (
        ImportStats as ImportStats,
    )
    from dockward.vulndb.store import (
        default_db_path as default_db_path,
    )
    from dockward.vulndb.store import (
        import_path as import_path,
    )
    from dockward.vulndb.store import (
        open_db as open_db,
    )
    from dockward.vulndb.store import (
        status as status,
    )
    from dockward.vulndb.update import (
        DEFAULT_ECOSYSTEMS as DEFAULT_ECOSYSTEMS,
    )
    from dockward.vulndb.update import (
        DEFAULT_URL as DEFAULT_URL,
    )
    from dockward.vulndb.update import (
        UpdateError as UpdateError,
    )
    from dockward.vulndb.update import (
        update_db as update_db,
    )
    from dockward.vulndb.versions import (
        VersionError as VersionError,
    )
    from dockward.vulndb.versions import (
        comparator as comparator,
    )

_WHERE = {
    "DEFAULT_ECOSYSTEMS": "update",
    "DEFAULT_URL": "update",
    "DatabaseError": "store",
    "DbStatus": "store",
    "ImportStats": "store",
    "Match": "match",
    "UpdateError": "update",
    "VersionError": "versions",
    "comparator": "versions",
    "default_db_path": "store",
    "import_path": "store",
    "match_packages": "match",
    "open_db": "store",
    "status": "store",
    "update_db": "update",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_attributes(__name__, _WHERE)
