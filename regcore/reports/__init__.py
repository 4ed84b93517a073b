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

- a header: sweep name, workload, status, objective(s), trial counts by state, best value;
- the best setting [``best``]: method, λ₁, λ₂, lr and value, a ``Regularizer(...)`` line to
  paste, and the best of each method beside the λ = 0 baseline; with two objectives, the
  Pareto-optimal trials instead [``pareto-trials``];
- the optimization history [``history``], one per objective;
- the objective over λ₁ × λ₂ [``contour``];
- the methods compared [``methods``]: objective and median step time by method;
- sparsity against the objective [``sparsity``], or with two objectives the Pareto front
  [``pareto-front``];
- parameter importances [``importances``] (fANOVA, seeded).

A batch report has a table of each sweep's best λ₁, λ₂, method and value [``best``] and a
small optimization history per sweep [``history``].

What a section cannot draw yet (no complete trial, λ₁ fixed, one method, a plot Optuna
refuses) is a short note saying why, in place of its figure: a report never fails for what
its study lacks.
"""

from regcore.reports._batch import BatchEntry, batch_report
from regcore.reports._sweep import sweep_report

__all__ = [
    "BatchEntry",
    "batch_report",
    "sweep_report",
]
