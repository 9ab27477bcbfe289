"""Search: a query in, ranked hits out (``engine``), fused per file, rendered as ``rows``.

Imports ``embedders``, ``decoders``, ``store``, ``items``, ``config``, ``errors``.
"""
