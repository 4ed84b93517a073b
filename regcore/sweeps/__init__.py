"""A sweep as a whole: its Optuna study created and resumed with its row
(:mod:`regcore.sweeps.studies`; what a killed submission left, :mod:`regcore.sweeps.half_made`),
path mode's plan (:mod:`regcore.sweeps.path`), what it found
(:mod:`regcore.sweeps.results`) and its trials as CSV/JSON rows (:mod:`regcore.sweeps.export`).

Import the modules themselves: this package re-exports nothing, so reading results or
exporting trials does not load the store, and :mod:`regcore.spec` may name the path sampler
without a cycle."""
