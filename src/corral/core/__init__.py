"""The bottom layer: plain values, settings, the error hierarchy, the clock and task helpers.

Belongs here: frozen dataclasses and str-Enums that every layer shares, ``Settings`` (the only
reader of ``os.environ``), ``CorralError`` and its children, ARN helpers, the ``Clock`` protocol.
Must not be here: I/O beyond reading the environment once, sockets, processes, SQL, HTTP.
"""
