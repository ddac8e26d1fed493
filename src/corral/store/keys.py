"""The ``api_keys`` table: access keys, their secrets, roles and function patterns.

The secret is stored as is: verifying a SigV4 signature needs it (AWS keeps secrets the
same way); ``corral.db`` is readable by its owner only.
"""

from __future__ import annotations

import json

from corral.store.db import Database

__all__ = ["KeyRow", "KeyTable"]

# (access_key_id, secret, role, function patterns, name, created_s)
KeyRow = tuple[str, str, str, tuple[str, ...], str, float]


class KeyTable:
    """Rows of ``api_keys``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def list(self) -> list[KeyRow]:
        rows = self._db.query(
            "SELECT access_key_id, secret, role, function_patterns, name, created_s "
            "FROM api_keys ORDER BY created_s, access_key_id"
        )
        return [(r[0], r[1], r[2], tuple(json.loads(r[3])), r[4], float(r[5])) for r in rows]

    def put(self, row: KeyRow) -> None:
        key_id, secret, role, patterns, name, created_s = row
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (access_key_id, secret, role, function_patterns, name, "
                "created_s) VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, secret, role, json.dumps(list(patterns)), name, created_s),
            )

    def delete(self, access_key_id: str) -> bool:
        with self._db.transaction() as conn:
            cursor = conn.execute("DELETE FROM api_keys WHERE access_key_id = ?", (access_key_id,))
            return cursor.rowcount > 0
