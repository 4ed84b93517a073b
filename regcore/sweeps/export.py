"""A study's trials as flat records, CSV and JSON: for spreadsheets, pandas and scripts.

One record per trial, every record with the same keys in the same order:

- fixed columns first: ``number``, ``state``, the objective values (``value_0``, ``value_1``,
  … or ``value_<name>`` when the study has Optuna metric names), ``datetime_start``,
  ``datetime_complete`` (ISO 8601, UTC) and ``duration_s``;
- then the parameters as ``params_<name>`` and the user attributes (what the runner
  recorded: ``method``, ``l1``, ``l2``, ``lr``, metrics, ``fail_reason``…) as
  ``attrs_<key>``, each group sorted by name. A trial without a column (a conditional
  parameter, an attribute only failed trials carry) has ``None`` there.

JSON has no inf or nan, so :func:`to_json` writes them as ``null`` (a diverged trial's
loss); CSV keeps ``inf``/``nan``, which ``float()`` and pandas read back.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import optuna
from optuna.trial import FrozenTrial

__all__ = ["iso_utc", "jsonable", "to_csv", "to_json", "trial_records", "value_columns"]

TIME_COLUMNS = ("datetime_start", "datetime_complete", "duration_s")


def jsonable(value: Any) -> Any:
    """``value`` with every non-finite float (at any depth) as None, tuples as lists and
    keys as strings, so ``json.dumps(..., allow_nan=False)`` accepts it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def iso_utc(stamp: datetime | None, *, naive_is_local: bool = True) -> str | None:
    """ISO 8601 in UTC with a ``Z``, as the REST API writes times.

    Optuna's trial times are naive local time (``naive_is_local=True``); regsweep's own
    tables hold UTC, so pass False for a naive stamp read from them.
    """
    if stamp is None:
        return None
    if stamp.tzinfo is None and not naive_is_local:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC).isoformat().replace("+00:00", "Z")


def value_columns(study: optuna.Study) -> list[str]:
    """``value_<metric name>`` when the study names its objectives, else ``value_<i>``."""
    names = study.metric_names
    if names is None:
        names = [str(i) for i in range(len(study.directions))]
    return [f"value_{name}" for name in names]


def _duration(trial: FrozenTrial) -> float | None:
    start, end = trial.datetime_start, trial.datetime_complete
    return None if start is None or end is None else (end - start).total_seconds()


def _table(study: optuna.Study) -> tuple[list[str], list[dict[str, Any]]]:
    trials = study.get_trials(deepcopy=False)
    values = value_columns(study)
    params = sorted({name for t in trials for name in t.params})
    attrs = sorted({key for t in trials for key in t.user_attrs})
    columns = [
        "number",
        "state",
        *values,
        *TIME_COLUMNS,
        *(f"params_{name}" for name in params),
        *(f"attrs_{key}" for key in attrs),
    ]
    records = []
    for trial in trials:
        trial_values = trial.values or [None] * len(values)
        record: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.name,
            **dict(zip(values, trial_values, strict=True)),
            "datetime_start": iso_utc(trial.datetime_start),
            "datetime_complete": iso_utc(trial.datetime_complete),
            "duration_s": _duration(trial),
        }
        record.update({f"params_{name}": trial.params.get(name) for name in params})
        record.update({f"attrs_{key}": trial.user_attrs.get(key) for key in attrs})
        records.append(record)
    return columns, records


def trial_records(study: optuna.Study) -> list[dict[str, Any]]:
    """Every trial of ``study`` by number, as one flat dict each (values kept as stored:
    floats may be inf or nan, attributes may be lists or dicts)."""
    return _table(study)[1]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(jsonable(value), allow_nan=False, sort_keys=True)
    return value


def to_csv(study: optuna.Study) -> str:
    """The trials as CSV with a header row; an empty study gives the fixed columns only.

    Empty cells are missing values; booleans are ``true``/``false``; list and dict
    attributes are JSON strings.
    """
    columns, records = _table(study)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in record.items()} for record in records)
    return out.getvalue()


def to_json(study: optuna.Study, *, indent: int | None = None) -> str:
    """The trials as a JSON list of records; inf and nan are ``null``."""
    return json.dumps(jsonable(trial_records(study)), allow_nan=False, indent=indent)
