"""The ``tags`` table: tags of functions and capacity providers, keyed by unqualified ARN."""

from __future__ import annotations

import json
import sqlite3

from corral.store.db import Database

__all__ = ["TagTable"]


class TagTable:
    """Rows of ``tags``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, resource_arn: str) -> dict[str, str]:
        rows = self._db.query("SELECT tags FROM tags WHERE resource_arn = ?", (resource_arn,))
        return dict(json.loads(rows[0]["tags"])) if rows else {}

    def put(self, resource_arn: str, tags: dict[str, str]) -> None:
        with self._db.transaction() as conn:
            self.put_in(conn, resource_arn, tags)

    def put_in(self, conn: sqlite3.Connection, resource_arn: str, tags: dict[str, str]) -> None:
        """Replace the tags of ``resource_arn`` inside the caller's transaction."""
        if tags:
            conn.execute(
                "INSERT OR REPLACE INTO tags (resource_arn, tags) VALUES (?, ?)",
                (resource_arn, json.dumps(tags, sort_keys=True)),
            )
        else:
            conn.execute("DELETE FROM tags WHERE resource_arn = ?", (resource_arn,))
