"""``python -m hpclab`` is the ``hpclab`` command."""

from hpclab.cli import main

main()
