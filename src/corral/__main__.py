"""``python -m corral`` runs the command-line interface."""

from __future__ import annotations

from corral.cli.main import main

main()
