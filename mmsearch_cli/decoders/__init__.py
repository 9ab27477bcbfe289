"""Decode: files in, ``MediaItem``s out (``dispatch.decode``), one module per kind of media.

Imports ``models``, ``items``, ``config``, ``errors`` and ``embedders.yamnet`` (ARCHITECTURE.md).
"""
