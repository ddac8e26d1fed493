"""How an execution environment's processes are isolated.

Belongs here: the ``Sandbox`` protocol and its implementations (``process``: a plain process
group, for development; ``container``: an OCI container run by runc), and the registry of
Python interpreters that the Lambda runtimes map to. Must not be here: the Runtime API,
functions, scheduling.
"""
