"""The Lambda REST API: botocore's paths, JSON shapes, status codes and errors.

Belongs here: request parsing and validation, response shapes, the mapping from Corral's
errors to Lambda errors, the routes, and the composition root (``app.create_app``) that
wires the services together. Must not be here: processes, sockets of execution
environments, SQL.
"""
