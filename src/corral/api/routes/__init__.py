"""One module per group of Lambda operations; ``api.app`` assembles their routes."""
