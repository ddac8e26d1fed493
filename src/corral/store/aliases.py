"""The ``aliases`` table."""

from __future__ import annotations

import json
import sqlite3

from corral.core import models
from corral.store.db import Database

__all__ = ["AliasTable"]


def _row_to_alias(row: sqlite3.Row) -> models.Alias:
    return models.Alias(
        function_name=row["function_name"],
        name=row["name"],
        function_version=row["function_version"],
        description=row["description"],
        routing_weights=json.loads(row["routing"]),
        revision_id=row["revision_id"],
    )


class AliasTable:
    """Rows of ``aliases``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, alias: models.Alias) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO aliases (function_name, name, function_version,"
                " description, routing, revision_id) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    alias.function_name,
                    alias.name,
                    alias.function_version,
                    alias.description,
                    json.dumps(dict(alias.routing_weights), sort_keys=True),
                    alias.revision_id,
                ),
            )

    def get(self, function_name: str, name: str) -> models.Alias | None:
        rows = self._db.query(
            "SELECT * FROM aliases WHERE function_name = ? AND name = ?", (function_name, name)
        )
        return _row_to_alias(rows[0]) if rows else None

    def list_for(self, function_name: str) -> list[models.Alias]:
        rows = self._db.query(
            "SELECT * FROM aliases WHERE function_name = ? ORDER BY name", (function_name,)
        )
        return [_row_to_alias(r) for r in rows]

    def delete(self, function_name: str, name: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "DELETE FROM aliases WHERE function_name = ? AND name = ?", (function_name, name)
            )
