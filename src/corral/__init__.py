"""Corral: AWS Lambda Managed Instances, self-hosted.

The package is layered (see ``docs/architecture.md``); import-linter enforces that arrows
point down only: ``cli -> api -> router, scaler -> backends -> agent -> runtime ->
sandbox, store, telemetry -> core``.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
