"""Where instances come from.

Belongs here: the ``Backend`` protocol and its implementations (``local``: instances carved
out of this host, each with its own agent; ``ray``, later: instances are Ray nodes). Must not
be here: scaling decisions; the scaler tells a backend what to do.
"""
