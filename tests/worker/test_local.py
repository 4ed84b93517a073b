"""Whole sweeps on this machine with real worker processes and a real SQLite file."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from regcore.settings import Settings
from regcore.store import (
    count_trials,
    create_engine_for,
    create_storage,
    finish_sweep,
    insert_sweep,
    list_outbox_events,
    upgrade_database,
)
from regcore.sweeps.studies import SpecMismatchError, open_study
from regcore.worker.local import LocalOptions, run_local_sweep
from regcore.worker.options import WorkerOptions
from tests.webhooks import receiving
from tests.worker.specs import queue_spec


def local_worker(tmp_path: Path) -> WorkerOptions:
    """A worker's options on a SQLite file in ``tmp_path``."""
    return WorkerOptions(database_url=f"sqlite:///{tmp_path / 's.db'}")


def states(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


@pytest.mark.parametrize("workers", [1, 3])
def test_budget_is_exact(workers: int, tmp_path: Path) -> None:
    spec = queue_spec(budget={"n_trials": 7})
    options = LocalOptions(worker=local_worker(tmp_path), workers=workers)
    run = run_local_sweep(spec, options)
    study = run.study
    assert run.outcome == "completed"
    assert states(study) == {"COMPLETE": 7}
    assert study.trials[0].user_attrs["baseline"] is True


def test_a_sweep_resumes_and_ends_with_its_budget(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    run_local_sweep(
        queue_spec(budget={"n_trials": 3}), LocalOptions(worker=WorkerOptions(database_url=url))
    )
    run = run_local_sweep(
        queue_spec(budget={"n_trials": 5}), LocalOptions(worker=WorkerOptions(database_url=url))
    )
    study = run.study
    assert run.outcome == "completed"
    assert states(study) == {"COMPLETE": 5}


def test_a_completed_sweep_run_again_only_shows_its_results(tmp_path: Path) -> None:
    options = LocalOptions(worker=local_worker(tmp_path))
    first = run_local_sweep(queue_spec(budget={"n_trials": 2}), options)
    again = run_local_sweep(queue_spec(budget={"n_trials": 2}), options)
    assert again.outcome == "completed"
    assert again.sweep == first.sweep  # not reopened: same finish, nothing announced again
    assert states(again.study) == {"COMPLETE": 2}


def test_a_different_spec_under_the_same_name_is_refused(tmp_path: Path) -> None:
    storage = create_storage(f"sqlite:///{tmp_path / 's.db'}")
    open_study(queue_spec(), storage)
    changed = queue_spec(training={"epochs": 4, "batch_size": 400, "device": "cpu"})
    with pytest.raises(SpecMismatchError, match="different training; give the sweep a new name"):
        open_study(changed, storage)


def test_proximal_sweep_recovers_the_support_where_loss_has_no_zeros(tmp_path: Path) -> None:
    """The case L1 exists for: only the proximal method sets weights exactly to zero."""
    spec = queue_spec(
        objectives=[{"metric": "support_f1", "direction": "maximize"}],
        training={"epochs": 100, "batch_size": 400, "device": "cpu"},
        sampler={"name": "grid", "seed": 0},
        search_space={
            "l1": {"choices": [0.003, 0.01, 0.03, 0.1, 0.3]},
            "l2": 0.0,
            "method": ["proximal", "loss"],
        },
        budget={"n_trials": 11},
    )
    study = run_local_sweep(spec, LocalOptions(worker=local_worker(tmp_path))).study
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    by_method = {
        m: [t for t in complete if t.user_attrs["method"] == m and not t.user_attrs.get("baseline")]
        for m in ("proximal", "loss")
    }
    best_proximal = max(by_method["proximal"], key=lambda t: t.value or 0.0)
    best_loss = max(by_method["loss"], key=lambda t: t.value or 0.0)
    assert best_proximal.value is not None
    assert best_proximal.value >= 0.9
    assert best_proximal.user_attrs["sparsity"] > 0.5
    assert best_loss.user_attrs["sparsity"] == 0.0
    assert all(t.user_attrs["sparsity"] == 0.0 for t in by_method["loss"])


def test_ctrl_c_exits_130_marks_the_running_trial_and_a_rerun_resumes(tmp_path: Path) -> None:
    spec_file = tmp_path / "slow.yaml"
    spec = queue_spec(
        name="interrupt-test",
        workload={"name": "digits_mlp", "params": {"hidden": [256, 256]}},
        training={"epochs": 8, "batch_size": 16, "device": "cpu"},
        search_space={"l1": 0.0, "l2": {"low": 1e-5, "high": 1e-3, "log": True}},
        budget={"n_trials": 3},
    )
    spec_file.write_text(yaml.safe_dump(spec.to_json_dict()))
    url = f"sqlite:///{tmp_path / 's.db'}"
    command = [sys.executable, "-m", "regcore.cli", "run", str(spec_file), "--storage", url]
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    storage = create_storage(url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until a trial is running
        summaries = optuna.get_all_study_summaries(storage)
        if summaries and count_trials(storage.engine, "interrupt-test").running:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends (to the whole process group)
    output, _ = process.communicate(timeout=120)
    text = output.decode()
    assert process.returncode == 130, text  # as a shell reports a process ended by SIGINT
    said = re.search(r"interrupted at (\d) of 3: run the same command to resume", text)
    assert said is not None, text
    assert "best trials" not in text  # no table,
    assert "In your training script" not in text  # and no recommendation
    study = optuna.load_study(study_name="interrupt-test", storage=storage)
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    interrupted = [t for t in study.trials if t.user_attrs.get("interrupted")]
    assert len(interrupted) == 1
    assert interrupted[0].state == TrialState.FAIL

    faster = queue_spec(**{**spec.to_json_dict(), "budget": {"n_trials": 3}})
    run = run_local_sweep(faster, LocalOptions(worker=WorkerOptions(database_url=url)))
    assert run.outcome == "completed"
    assert count_trials(storage.engine, "interrupt-test").finished == 3


def test_no_trial_starts_after_the_deadline(tmp_path: Path) -> None:
    spec = queue_spec(budget={"n_trials": 5, "deadline": "2020-01-01T00:00:00Z"})
    run = run_local_sweep(spec, LocalOptions(worker=local_worker(tmp_path)))
    assert run.outcome == "deadline_reached"
    assert states(run.study) == {"WAITING": 1}  # only the queued baseline, never started


def test_worker_options_are_read_from_the_settings_in_one_place(tmp_path: Path) -> None:
    settings = Settings(
        database_url="sqlite:///elsewhere.db",
        data_dir=tmp_path / "data",
        artifact_dir=tmp_path / "artifacts",
        heartbeat_s=3,
        grace_s=7,
        max_retries=5,
        plugins="my.models, my.functions",
        webhook_allow="127.0.0.1,.internal",
    )
    options = WorkerOptions.from_settings(settings, device="cuda:1")
    assert options == WorkerOptions(
        database_url="sqlite:///elsewhere.db",
        device="cuda:1",
        data_dir=tmp_path / "data",
        artifact_dir=tmp_path / "artifacts",
        heartbeat_s=3,
        grace_s=7,
        max_retries=5,
        plugins=("my.models", "my.functions"),
        webhook_allow=("127.0.0.1", ".internal"),
    )


def test_regsweep_run_delivers_its_webhook_and_leaves_other_sweeps_events(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    upgrade_database(url)
    engine = create_engine_for(url)
    with receiving() as receiver:
        # Another sweep on the shared database ended: its event waits for its deliverers.
        theirs = {**queue_spec().to_json_dict(), "name": "theirs"}
        theirs["notify"] = {"webhook_url": receiver.url + "?theirs"}
        other = insert_sweep(engine, spec_json=theirs, name="theirs")
        finish_sweep(engine, other.id, "completed")
        mine = {**queue_spec().to_json_dict(), "name": "mine", "budget": {"n_trials": 2}}
        mine["notify"] = {"webhook_url": receiver.url}
        spec_file = tmp_path / "mine.json"
        spec_file.write_text(json.dumps(mine))
        env = {**os.environ, "REGSWEEP_WEBHOOK_ALLOW": "127.0.0.1", "OMP_NUM_THREADS": "1"}
        done = subprocess.run(
            [sys.executable, "-m", "regcore.cli", "run", str(spec_file), "--storage", url],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        # Its own webhook, to a loopback address REGSWEEP_WEBHOOK_ALLOW allows, went out.
        assert [(b["event"], b["name"]) for b in receiver.bodies] == [("sweep.finished", "mine")]
    (left,) = list_outbox_events(engine, sweep_id=other.id)
    assert (left.attempts, left.delivered_at, left.last_error) == (0, None, None)
    assert left.next_attempt_at is not None  # still due: not dropped for good
    engine.dispose()
