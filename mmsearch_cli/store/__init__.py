"""Store: hnswlib files per space, a JSON sidecar, a batch journal and a lock; ``doctor``.

Imports only ``items`` and ``errors``.
"""
