"""Durable state: SQLite (WAL) for records, content-addressed files for code.

Belongs here: the only SQL in Corral, one module per table, and the code blob store.
Must not be here: business rules (validation, state machines, defaults): callers decide,
the store records. Every write is a short transaction, so a crash loses nothing acknowledged.
"""
