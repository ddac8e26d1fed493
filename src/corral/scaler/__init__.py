"""Reconcile loops: how many execution environments each function version should have.

Belongs here: the pure policy and ``plan(target, observed) -> actions`` functions, the loop
that ticks, observes and applies, and on-demand (cold) starts for classic functions. Must
not be here: serving requests, or talking to processes other than through a ``Backend``.
"""
