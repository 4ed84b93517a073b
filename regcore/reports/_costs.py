"""What each method costs: the cost probe's step times, one table per device.

Methods of one class train the same model, so what tells them apart is their cost, and a
sweep runs the cheapest. The worker's cost probe times every listed method (and no
regularizer) on the sweep's own model, back to back, once per sweep and device
(:func:`regcore.sweeps.results.method_costs`). Step times of the trials are not shown: they ran
at different moments, on machines doing other things, and do not compare.
"""

from __future__ import annotations

from collections import Counter

import optuna

from regcore.regularizers import CLASSES, method_class
from regcore.reports._facts import SweepFacts, class_of, complete_trials, is_baseline
from regcore.reports._html import Markup, note, num, table, text
from regcore.reports._trial_plots import method_of
from regcore.sweeps.results import method_costs

NONE = "none"  # the probe's name for the step without a regularizer


def _class_names(study: optuna.Study, facts: SweepFacts, methods: list[str]) -> dict[str, str]:
    """Each method's class: as its trials recorded it, else as the spec's optimizer makes it."""
    searched = [t for t in complete_trials(study) if not is_baseline(t)]
    seen = {method_of(t): class_of(t) for t in searched if "method_class" in t.user_attrs}
    optimizer = facts.section("optimizer")
    names: dict[str, str] = {}
    for method in methods:
        if method == NONE:
            names[method] = "none (no regularizer)"
        elif method in seen:
            names[method] = seen[method]
        else:
            try:
                momentum = optimizer.get("momentum")
                names[method] = method_class(
                    method,
                    optimizer=str(optimizer.get("name", "adam")),
                    momentum=float(momentum) if isinstance(momentum, int | float) else None,
                )
            except ValueError:
                names[method] = "?"
    return names


def _why_none(facts: SweepFacts) -> str:
    if len(facts.methods) == 1:
        return (
            f"Only one method ({facts.methods[0]}) was listed, so no cost probe timed the "
            "methods: there is no cheaper implementation to choose."
        )
    try:
        from regcore.workloads import TrainingFunction, get_workload

        own_loop = isinstance(get_workload(facts.workload), TrainingFunction)
    except Exception:  # an unknown or unloadable workload: say what is known
        own_loop = False
    if own_loop:
        return (
            f"{facts.workload} is a training function: its loop is its own, so no cost probe "
            "timed its methods (each class ran the method measured cheapest in general)."
        )
    return (
        "No cost probe was recorded (sweeps from before the probe, or a probe that failed: "
        "the worker's log says why). The trials' own step times are not shown: they ran at "
        "different moments, on machines doing other things, and do not compare."
    )


def cost_tables(study: optuna.Study, facts: SweepFacts) -> list[Markup]:
    """One table per device (method, class, ms per step, ratio to no regularizer, how many
    search trials ran it), or the note that says why there is none."""
    probes = method_costs(study)
    if not probes:
        return [Markup("<h3>Step time of each method</h3>"), note(_why_none(facts))]
    ran = Counter(method_of(t) for t in complete_trials(study) if not is_baseline(t))
    rank = {c: i for i, c in enumerate(CLASSES)}
    parts: list[Markup] = []
    for device, costs in sorted(probes.items()):
        names = _class_names(study, facts, list(costs))
        base = costs.get(NONE)

        order = sorted(
            costs,
            key=lambda m: (-1 if m == NONE else rank.get(names[m], len(rank)), costs[m]),
        )
        rows = [
            [
                method,
                names[method],
                num(float(costs[method]), ".3g"),
                f"{costs[method] / base:.2f}×" if base else "—",
                ran.get(method, 0) if method != NONE else "—",
            ]
            for method in order
        ]
        headers = ["method", "class", "ms per step", "× no regularizer", "search trials"]
        parts.append(Markup(f"<h3>Step time of each method (cost probe on {text(device)})</h3>"))
        parts.append(table(headers, rows, numeric=(2, 3, 4)))
    return parts
