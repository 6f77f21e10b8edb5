"""hpclab's Hydra launcher plugin: ``hydra/launcher=hpclab_local`` and
``hydra/launcher=hpclab_slurm`` for any Hydra app.

Hydra only accepts plugins from the ``hydra_plugins`` namespace and finds them by importing
every module in it, so this package is ``hydra_plugins.hpclab_launcher``, at the top of
the repository beside ``hpclab/``. Like hydra-submitit-launcher it
is two modules: the config dataclasses (``config``) and the launcher (``launcher``),
which imports submitit and the tracking code lazily so discovery stays fast.
"""
