"""Observing the server: Prometheus metrics, structured logs and the sync events behind them.

Imports nothing of ankisyncd but ``errors`` and ``config``-free plain values: ``http/`` records
requests, ``server/`` reports domain events through ``events.SyncEvents``.
"""
