"""The ``stacks`` table: what ``corral deploy`` made of each template, by stack name.

The record is the deploy tool's JSON (its resources, their physical ids, resolved
properties, outputs, status); the server keeps it without reading it, so that any machine's
``corral deploy`` and ``corral stacks`` see the same stacks.
"""

from __future__ import annotations

import json
from typing import Any

from corral.store.db import Database

__all__ = ["StackTable"]


class StackTable:
    """Rows of ``stacks``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def list(self) -> list[dict[str, Any]]:
        rows = self._db.query("SELECT record FROM stacks ORDER BY name")
        return [json.loads(r["record"]) for r in rows]

    def get(self, name: str) -> dict[str, Any] | None:
        rows = self._db.query("SELECT record FROM stacks WHERE name = ?", (name,))
        return json.loads(rows[0]["record"]) if rows else None

    def put(self, name: str, record: dict[str, Any], now_s: float) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO stacks (name, record, updated_s) VALUES (?, ?, ?)",
                (name, json.dumps(record, sort_keys=True), now_s),
            )

    def delete(self, name: str) -> bool:
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM stacks WHERE name = ?", (name,)).rowcount > 0
