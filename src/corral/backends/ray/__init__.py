"""The Ray backend: instances are the nodes of a Ray cluster that advertise ``corral``.

Belongs here, and only here: ``import ray`` (the driver side in ``backend`` and ``cluster``,
the agent's actor in ``actor``). Ray places and supervises one agent per node and grows the
node pool through its autoscaler; invocations never travel through Ray (``agent.link``).
Must not be here: anything the local backend also needs (``backends.remote``,
``backends.nodes``).
"""
