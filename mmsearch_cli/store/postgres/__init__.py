"""The PostgreSQL + pgvector backend: a shared, published copy of local indexes.

The local store stays each indexer's working copy (its incremental state, journal and
kill-safety are the tested ones); ``publish`` copies what changed into the database, and
``reader`` answers queries from it with the same surface as ``store.index.IndexReader``,
so the search code runs unchanged. Nothing here imports psycopg until it is used.
"""
