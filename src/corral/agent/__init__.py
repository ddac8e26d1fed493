"""One instance: launch execution environments in a sandbox, watch them, replace dead ones.

Belongs here: ``ExecutionEnvironment`` (a runtime process tree plus its Runtime API server and
log channels), the environment variables Lambda gives a runtime, usage sampling, and the
``Agent`` that owns the environments of one instance. Must not be here: decisions about how
many environments there should be (``scaler``) or which one serves a request (``router``).
"""
