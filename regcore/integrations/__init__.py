"""The regularizer and a trial inside the trainers users already have.

- :mod:`regcore.integrations.lightning` (``pip install regsweep[lightning]``): ``Regularize``
  and ``TrialCallback`` as Lightning callbacks (``lightning`` or ``pytorch_lightning``).
- :mod:`regcore.integrations.transformers` (``pip install regsweep[transformers]``): the same
  pair as Hugging Face ``TrainerCallback``\\ s.

Each module imports its trainer; this package imports nothing, so ``import regcore`` and
``import regcore.regularizers`` stay torch-only.
"""
