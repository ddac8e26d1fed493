"""The web console at ``/console/``: pages of the functions, capacity providers, logs,
requests and cost, live, behind a login with a Corral key (docs/console.md)."""
