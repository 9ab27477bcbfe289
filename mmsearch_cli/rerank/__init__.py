"""Rerank: a cross-encoder (``crossencoder``) re-orders result rows per family (``stage``).

Imports ``search.rows``, ``search.explain``, ``models``, ``config``, ``errors``.
"""
