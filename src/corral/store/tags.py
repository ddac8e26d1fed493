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
        # What was read, by ARN: the invoke path reads a function's tags (its extras).
        self._cache: dict[str, dict[str, str]] = {}

    def get(self, resource_arn: str) -> dict[str, str]:
        cached = self._cache.get(resource_arn)
        if cached is None:
            rows = self._db.query("SELECT tags FROM tags WHERE resource_arn = ?", (resource_arn,))
            cached = dict(json.loads(rows[0]["tags"])) if rows else {}
            self._cache[resource_arn] = cached
        return dict(cached)

    def put(self, resource_arn: str, tags: dict[str, str]) -> None:
        with self._db.transaction() as conn:
            self.put_in(conn, resource_arn, tags)

    def put_in(self, conn: sqlite3.Connection, resource_arn: str, tags: dict[str, str]) -> None:
        """Replace the tags of ``resource_arn`` inside the caller's transaction."""
        self._cache.pop(resource_arn, None)  # read again after the commit (or rollback)
        if tags:
            conn.execute(
                "INSERT OR REPLACE INTO tags (resource_arn, tags) VALUES (?, ?)",
                (resource_arn, json.dumps(tags, sort_keys=True)),
            )
        else:
            conn.execute("DELETE FROM tags WHERE resource_arn = ?", (resource_arn,))
