"""``python -m oracle.cli``: the same as the ``pouw`` command."""

from oracle.cli.main import main

main()
