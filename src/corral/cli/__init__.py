"""The ``corral`` command: ``serve``, ``invoke``, ``status``, ``runtimes``.

Belongs here: argument parsing, output (rich tables, ``--json``), and turning settings into
a running server. Must not be here: business rules (the server decides; the CLI shows).
"""
