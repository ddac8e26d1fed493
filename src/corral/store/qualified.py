"""The ``qualifier_configs`` table: configuration a function keeps per qualifier, as JSON.

One row per ``(kind, function, qualifier)``: ``event-invoke`` (PutFunctionEventInvokeConfig)
and ``url`` (CreateFunctionUrlConfig). Rows go with their function (``ON DELETE CASCADE``);
the catalog deletes those of a deleted version or alias.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from corral.store.db import Database

__all__ = ["QualifierConfigTable"]


class QualifierConfigTable:
    """Rows of ``qualifier_configs``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def list_all(self) -> list[tuple[str, str, str, dict[str, Any]]]:
        """Every row: ``(kind, function, qualifier, config)``."""
        rows = self._db.query("SELECT * FROM qualifier_configs")
        return [
            (r["kind"], r["function_name"], r["qualifier"], json.loads(r["config"])) for r in rows
        ]

    def put(self, kind: str, function_name: str, qualifier: str, config: dict[str, Any]) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO qualifier_configs (kind, function_name, qualifier, config)"
                " VALUES (?, ?, ?, ?)",
                (kind, function_name, qualifier, json.dumps(config, sort_keys=True)),
            )

    def delete(self, kind: str, function_name: str, qualifier: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "DELETE FROM qualifier_configs WHERE kind = ? AND function_name = ?"
                " AND qualifier = ?",
                (kind, function_name, qualifier),
            )

    @staticmethod
    def delete_qualifier_in(conn: sqlite3.Connection, function_name: str, qualifier: str) -> None:
        """Within a caller's transaction: every kind of configuration of one qualifier."""
        conn.execute(
            "DELETE FROM qualifier_configs WHERE function_name = ? AND qualifier = ?",
            (function_name, qualifier),
        )
