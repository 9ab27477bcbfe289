"""Embed: ``MediaItem``s in, unit vectors out, per space (``spaces``, ``registry``).

Imports ``decoders``, ``models``, ``store.state``, ``items``, ``config``, ``errors``.
"""
