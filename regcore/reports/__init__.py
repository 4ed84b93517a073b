"""Reports: a sweep's (or a batch's) Optuna studies as one self-contained HTML page.

Pure functions from studies to a string. The page opens offline: plotly.js is inlined once,
each figure is a ``<div>`` with the script that draws it, and nothing is fetched from a
network. Every string that comes from users (sweep names, workloads, statuses, trial
attributes) is escaped::

    from regcore.reports import batch_report, sweep_report

    page = sweep_report(study, spec=spec, sweep_id="abc123", status="completed")
    Path("report.html").write_text(page, encoding="utf-8")
    page = batch_report([(study, spec, "completed"), ...], batch_name="nightly")

A sweep report has, in order (the ``<section>`` ids in brackets):

- a header: sweep name, workload, status, objective(s), the search's trial counts by state
  (a confirmation's apart), best value, and the confirmation's verdict when there is one;
- the decision [``decision``]: the confirmation's verdict, each confirmed setting's mean ±
  sd over its seeds with its p-value against the λ = 0 baseline, and a figure of the seeds;
  without a confirmation, one line on how to ask for one (``confirm: {seeds: 5, top: 3}``);
- the best setting [``best``]: class, method, λ₁, λ₂, lr, value and secondary metrics
  (accuracy, sparsity), a ``Regularizer(...)`` line to paste, and the best of each method
  class beside the baseline; in path mode, the best point's value warm-started and
  re-trained from scratch; with two objectives, the Pareto-optimal trials instead
  [``pareto-trials``];
- learning curves [``curves``]: train and validation loss per epoch of the best trial and
  the baseline;
- the optimization history [``history``], one per objective;
- in path mode, the objective along each class's regularization path [``path``];
- the objective over λ₁ × λ₂, one contour per method class [``contour``];
- the method classes compared [``classes``]: the objective by class, the baseline apart,
  and the cost probe's step time of each method per device;
- sparsity against the objective [``sparsity``], or with two objectives the Pareto front
  [``pareto-front``];
- parameter importances [``importances``] (fANOVA, seeded).

Every figure of the search leaves the confirmation's trials out: they repeat settings the
search found, with new seeds, and are shown in the decision alone.

A batch report has a table of each sweep's best λ₁, λ₂, method and value [``best``] and a
small optimization history per sweep [``history``].

What a section cannot draw yet (no complete trial, λ₁ fixed, too few trials of a class, one
method, no cost probe, a plot Optuna refuses) is a short note saying why, in place of its
figure: a report never fails for what its study lacks.
"""

from regcore.reports._batch import BatchEntry, batch_report
from regcore.reports._sweep import sweep_report

__all__ = [
    "BatchEntry",
    "batch_report",
    "sweep_report",
]
