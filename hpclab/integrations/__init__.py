"""Native integrations with training libraries (imported on demand, never by ``hpclab``).

- :mod:`hpclab.integrations.lightning`: ``HpclabLogger``, a Lightning ``Logger``.
- :mod:`hpclab.integrations.transformers`: ``HpclabCallback``, a Hugging Face
  ``TrainerCallback``.

Both record into the current run (under an hpclab launcher or ``hpclab run``) or open
one themselves. What they record: metrics as the library names them, hyperparameters
and trainer settings in ``config.yaml`` under a key of their own (``hparams``,
``training_args``, ``model_config``), checkpoints in ``artifacts.json`` by reference
(where the trainer wrote them, not copied) and the run's total steps for progress.
"""
