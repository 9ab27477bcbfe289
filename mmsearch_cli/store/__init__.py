"""Store: a manifest, SQLite metadata (FTS5 lexical), flat vectors and hnswlib graphs per
space, a batch journal and a lock; ``doctor``.

Imports only ``items`` and ``errors``.
"""
