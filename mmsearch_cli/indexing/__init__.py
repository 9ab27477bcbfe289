"""Index: scan the roots, diff against the index, embed what changed, commit (``run``).

Imports ``decoders``, ``embedders``, ``store``, ``search.explain``, ``items``, ``config``,
``errors``.
"""
