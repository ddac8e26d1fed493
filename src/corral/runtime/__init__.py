"""The Lambda Runtime API that one execution environment's runtime talks to.

Belongs here: the HTTP server for ``/2018-06-01/runtime/...`` (next, response, error,
init/error), the invocation objects it hands out, and the log socket that runtime workers
write to. Must not be here: knowledge of functions beyond the one environment served,
routing, scaling, or process management.
"""
