"""``python -m mmsearch_cli``: the ``mms`` command, for environments without the script."""

from mmsearch_cli.cli.app import main

if __name__ == "__main__":
    main()
