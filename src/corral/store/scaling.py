"""The ``scaling_configs`` table: FunctionScalingConfig per published qualifier."""

from __future__ import annotations

from corral.core import models
from corral.store.db import Database

__all__ = ["ScalingConfigTable"]


class ScalingConfigTable:
    """Rows of ``scaling_configs``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, function_name: str, qualifier: str) -> models.ScalingConfig | None:
        rows = self._db.query(
            "SELECT * FROM scaling_configs WHERE function_name = ? AND qualifier = ?",
            (function_name, qualifier),
        )
        if not rows:
            return None
        return models.ScalingConfig(rows[0]["min_environments"], rows[0]["max_environments"])

    def put(self, function_name: str, qualifier: str, config: models.ScalingConfig) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO scaling_configs (function_name, qualifier,"
                " min_environments, max_environments) VALUES (?, ?, ?, ?)",
                (function_name, qualifier, config.min_environments, config.max_environments),
            )

    def delete(self, function_name: str, qualifier: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "DELETE FROM scaling_configs WHERE function_name = ? AND qualifier = ?",
                (function_name, qualifier),
            )
