"""The ``functions`` table: a function's identity, reserved concurrency and version counter."""

from __future__ import annotations

import sqlite3

from corral.core import models
from corral.store.db import Database

__all__ = ["FunctionTable"]


def _row_to_function(row: sqlite3.Row) -> models.Function:
    return models.Function(
        name=row["name"],
        created_s=row["created_s"],
        reserved_concurrency=row["reserved_concurrency"],
        last_version_number=row["last_version_number"],
        published_spec=row["published_spec"],
    )


class FunctionTable:
    """Rows of ``functions``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def insert(self, conn: sqlite3.Connection, function: models.Function) -> None:
        conn.execute(
            "INSERT INTO functions (name, created_s, reserved_concurrency, last_version_number)"
            " VALUES (?, ?, ?, ?)",
            (
                function.name,
                function.created_s,
                function.reserved_concurrency,
                function.last_version_number,
            ),
        )

    def get(self, name: str) -> models.Function | None:
        rows = self._db.query("SELECT * FROM functions WHERE name = ?", (name,))
        return _row_to_function(rows[0]) if rows else None

    def list(self) -> list[models.Function]:
        return [
            _row_to_function(r) for r in self._db.query("SELECT * FROM functions ORDER BY name")
        ]

    def next_version_number(self, conn: sqlite3.Connection, name: str, published_spec: str) -> int:
        """Claim the next version number of ``name`` and record the digest of what it is
        published from (inside the caller's transaction)."""
        conn.execute(
            "UPDATE functions SET last_version_number = last_version_number + 1,"
            " published_spec = ? WHERE name = ?",
            (published_spec, name),
        )
        row = conn.execute(
            "SELECT last_version_number FROM functions WHERE name = ?", (name,)
        ).fetchone()
        return int(row[0])

    def set_reserved_concurrency(self, name: str, value: int | None) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE functions SET reserved_concurrency = ? WHERE name = ?", (value, name)
            )

    def delete(self, conn: sqlite3.Connection, name: str) -> None:
        conn.execute("DELETE FROM functions WHERE name = ?", (name,))
