"""The ``mms`` command: parse, call ``api``, render. Only this package imports typer/rich.

Imports ``api``, ``errors``, ``config``, ``items`` and ``search.rows`` (ARCHITECTURE.md).
"""
