"""Evaluate: labelled queries run against an index, scored by graded metrics.

Imports ``search``, ``rerank``, ``store``, ``items``, ``config``, ``errors``.
"""
