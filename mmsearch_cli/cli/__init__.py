"""The ``mms`` command: parse, call the library, render. Only this package imports typer/rich."""
