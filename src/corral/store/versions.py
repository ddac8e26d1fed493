"""The ``versions`` table: ``$LATEST``, ``$LATEST.PUBLISHED`` and numbered versions.

``seq`` orders versions the way ListVersionsByFunction shows them: ``$LATEST`` first, then
``$LATEST.PUBLISHED``, then numbers ascending.
"""

from __future__ import annotations

import sqlite3

from corral.core import models
from corral.store import codec
from corral.store.db import Database

__all__ = ["VersionTable", "version_seq"]


def version_seq(version: str) -> int:
    """The sort key of a version within its function."""
    if version == models.LATEST:
        return -2
    if version == models.LATEST_PUBLISHED:
        return -1
    return int(version)


def _row_to_version(row: sqlite3.Row) -> models.FunctionVersion:
    return models.FunctionVersion(
        function_name=row["function_name"],
        version=row["version"],
        spec=codec.spec_from_json(row["spec"]),
        state=models.FunctionState(row["state"]),
        state_reason=row["state_reason"],
        state_reason_code=row["state_reason_code"],
        last_update_status=models.LastUpdateStatus(row["last_update_status"]),
        last_update_status_reason=row["last_update_status_reason"],
        last_update_status_reason_code=row["last_update_status_reason_code"],
        last_modified_s=row["last_modified_s"],
        revision_id=row["revision_id"],
    )


class VersionTable:
    """Rows of ``versions``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, conn: sqlite3.Connection, version: models.FunctionVersion) -> None:
        """Insert or replace one version."""
        conn.execute(
            "INSERT OR REPLACE INTO versions (function_name, version, seq, spec, state,"
            " state_reason, state_reason_code, last_update_status, last_update_status_reason,"
            " last_update_status_reason_code, last_modified_s, revision_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                version.function_name,
                version.version,
                version_seq(version.version),
                codec.spec_to_json(version.spec),
                version.state.value,
                version.state_reason,
                version.state_reason_code,
                version.last_update_status.value,
                version.last_update_status_reason,
                version.last_update_status_reason_code,
                version.last_modified_s,
                version.revision_id,
            ),
        )

    def get(self, function_name: str, version: str) -> models.FunctionVersion | None:
        rows = self._db.query(
            "SELECT * FROM versions WHERE function_name = ? AND version = ?",
            (function_name, version),
        )
        return _row_to_version(rows[0]) if rows else None

    def list_for(self, function_name: str) -> list[models.FunctionVersion]:
        rows = self._db.query(
            "SELECT * FROM versions WHERE function_name = ? ORDER BY seq", (function_name,)
        )
        return [_row_to_version(r) for r in rows]

    def list_all(self) -> list[models.FunctionVersion]:
        rows = self._db.query("SELECT * FROM versions ORDER BY function_name, seq")
        return [_row_to_version(r) for r in rows]

    def delete(self, conn: sqlite3.Connection, function_name: str, version: str) -> None:
        conn.execute(
            "DELETE FROM versions WHERE function_name = ? AND version = ?",
            (function_name, version),
        )
