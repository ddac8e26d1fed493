"""Logs and metrics of execution environments.

Belongs here: log records (every one with its request id), platform records
(START/END/REPORT or ``platform.*`` JSON), where records go, and metrics. Must not be here:
process management or routing.
"""
