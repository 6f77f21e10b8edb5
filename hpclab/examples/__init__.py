"""Example training tasks used by the quickstart, the tests and the ``conf/`` project."""
