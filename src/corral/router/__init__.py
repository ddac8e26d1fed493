"""The invoke path: resolve a function and qualifier to a version, pick an execution
environment with a free slot, throttle when there is none, and carry the result back.

Belongs here: resolution rules (``$LATEST``, ``$LATEST.PUBLISHED``, aliases), selection,
concurrency limits, and the durable queue of asynchronous invocations. Must not be here:
starting or stopping environments (classic cold starts are asked of the scaler through the
``ColdStarter`` seam).
"""
