"""deploy/slurm/regsweep-workers.sbatch on a real one-node SLURM cluster.

deploy/slurm/local-cluster.sh starts munged, slurmctld and slurmd in a scratch folder (two
fake GPUs, so the script's ``--gres=gpu:1`` is scheduled as written); the job arrays run real
``regsweep worker`` processes against a scratch PostgreSQL database. The first array reaches
its time limit's warning mid-trial: each worker interrupts its trial, queues it again and
leaves before the limit. A later array runs those trials and a second sweep to exactly their
budgets, and stops on ``scancel --batch --signal=TERM``.

The trials are a training function (tests/deploy/paced.py) whose epochs sleep
``REGSWEEP_TEST_EPOCH_S``: long in the first array, so a trial is surely running when the
signal comes, nothing in the second. Time limits are SLURM's minutes and slurmctld checks them
every 30 s, sending a warning up to 30 s early: a 2-minute job asked for a 70 s warning gets
it 20-50 s after its start (a worker here takes about 8 s to start and claim a trial). The
whole test takes 75-110 s on 2 cores.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from regcore.settings import Settings
from regcore.spec import parse_spec
from regcore.store import (
    count_trials,
    create_engine_for,
    create_storage,
    get_sweep,
    list_workers,
    upgrade_database,
)
from regcore.sweeps.studies import create_sweep
from regcore.workloads import load_plugin_modules
from tests.deploy.paced import EPOCH_S_VARIABLE
from tests.postgres import admin_engine, url_of
from tests.waiting import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
SBATCH_SCRIPT = ROOT / "deploy" / "slurm" / "regsweep-workers.sbatch"
LOCAL_CLUSTER = ROOT / "deploy" / "slurm" / "local-cluster.sh"
PLUGINS = "tests.deploy.paced"
PROGRAMS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel")
FINAL_JOB_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}
# Two workers on this 2-core machine: the script's CPUs and memory per GPU scaled down.
ARRAY_OF_TWO = ("--array=0-1", "--cpus-per-task=1", "--mem=500M")
GRACE_S = 3  # the workers' REGSWEEP_GRACE_S here: a trial gets 3 s to finish once stopped


def _directives() -> dict[str, str]:
    """The script's ``#SBATCH --option=value`` lines."""
    found = re.findall(r"^#SBATCH --([a-z-]+)=(\S+)", SBATCH_SCRIPT.read_text(), re.MULTILINE)
    return dict(found)


# --- the script itself (no cluster needed) -----------------------------------------------------


def test_script_signals_the_worker_itself_long_enough_before_the_time_limit() -> None:
    text = SBATCH_SCRIPT.read_text()
    signal = _directives()["signal"]
    grace_s = Settings.model_fields["grace_s"].default
    match = re.fullmatch(r"B:(TERM|INT)@(\d+)", signal)

    # B: signals the batch shell alone, and exec makes the worker that process: SLURM's
    # default (every process of every step) would kill a training function's child too.
    assert match, f"expected --signal=B:TERM@SECONDS, but got --signal={signal}"
    # The running trial may go on for grace_s; a training function that ignores the stop is
    # terminated grace_s later; then the worker queues the trial again and deregisters.
    assert int(match[2]) >= 2 * grace_s + 30, "the running trial's grace periods must fit"
    assert re.search(r"^exec regsweep worker \"\$@\"$", text, re.MULTILINE)
    assert "--gres=gpu:1" in text


def test_script_refuses_to_start_without_the_database_url(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REGSWEEP_DATABASE_URL"}
    done = subprocess.run(
        ["bash", str(SBATCH_SCRIPT)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "REGSWEEP_DATABASE_URL is unset" in done.stderr


# --- a one-node cluster ----------------------------------------------------------------------


@dataclass(frozen=True)
class Slurm:
    folder: Path

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    def command(self, *argv: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            argv,
            env={**(env or os.environ), "SLURM_CONF": str(self.conf)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr or done.stdout}"
        return done.stdout

    def sbatch(self, *options: str, env: dict[str, str], args: tuple[str, ...] = ()) -> str:
        """Submit the script as an array; its array job id."""
        out = self.command(
            "sbatch",
            "--parsable",
            f"--chdir={self.folder}",
            *options,
            str(SBATCH_SCRIPT),
            *args,
            env=env,
        )
        return out.strip().split(";")[0]

    def tasks(self, array_id: str) -> list[dict[str, str]]:
        """``scontrol show job`` of each task of the array."""
        out = self.command("scontrol", "--oneliner", "show", "job", array_id)
        return [
            dict(word.partition("=")[::2] for word in line.split() if "=" in word)
            for line in out.splitlines()
            if line.strip()
        ]

    def ended(self, array_id: str) -> bool:
        return all(t["JobState"] in FINAL_JOB_STATES for t in self.tasks(array_id))

    def output(self, task: dict[str, str]) -> str:
        return Path(task["StdOut"]).read_text() if Path(task["StdOut"]).exists() else ""


def _missing_programs() -> list[str]:
    path = f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin{os.pathsep}/sbin"
    return [p for p in PROGRAMS if shutil.which(p, path=path) is None]


@pytest.fixture(scope="module")
def slurm() -> Iterator[Slurm]:
    missing = _missing_programs()
    reason = ""
    if missing:
        reason = (
            f"SLURM is not installed here ({', '.join(missing)} missing): "
            "apt-get install slurm-wlm munge"
        )
    elif os.geteuid() != 0:
        reason = "the one-node SLURM cluster runs its daemons as root"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs the SLURM test: {reason} (.ci/run installs it)", pytrace=False)
        pytest.skip(reason)
    # Short: munge's socket lives in it, and a Unix socket's path has at most 107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="regsweep-slurm-"))
    env = {**os.environ, "SLURMCTLD_PORT": str(free_port()), "SLURMD_PORT": str(free_port())}
    env.pop("SLURM_CONF", None)
    try:
        started = subprocess.run(
            [str(LOCAL_CLUSTER), "start", str(folder)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert started.returncode == 0, f"local-cluster.sh start: {started.stderr}"
        yield Slurm(folder)
    finally:
        # Cancels what still runs and stops the daemons it started, by their pid files.
        subprocess.run([str(LOCAL_CLUSTER), "stop", str(folder)], env=env, timeout=120, check=False)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    admin = admin_engine()
    name = f"regsweep_slurm_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = url_of(name)
        upgrade_database(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _job_env(slurm: Slurm, url: str, *, epoch_s: float) -> dict[str, str]:
    """What sbatch passes on to the jobs: regsweep on PATH, its settings, the test's pace."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGSWEEP_", "SLURM_"))}
    return {
        **env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "REGSWEEP_DATABASE_URL": url,
        "REGSWEEP_PLUGINS": PLUGINS,
        "REGSWEEP_GRACE_S": str(GRACE_S),
        "REGSWEEP_HEARTBEAT_S": "1",
        "REGSWEEP_DATA_DIR": str(slurm.folder / "data"),
        "REGSWEEP_ARTIFACT_DIR": str(slurm.folder / "artifacts"),
        EPOCH_S_VARIABLE: str(epoch_s),
    }


def _submit(url: str, data: dict[str, Any]) -> str:
    engine, storage = create_engine_for(url), create_storage(url)
    try:
        return create_sweep(engine, storage, parse_spec(data)).id
    finally:
        engine.dispose()
        storage.engine.dispose()


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    storage = create_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    finally:
        storage.engine.dispose()


PACED = {
    "name": "slurm-paced",
    "workload": {"name": "deploy_paced"},
    "search_space": {
        "l1": {"low": 1e-4, "high": 1e-2, "log": True},
        "l2": 0.0,
        "method": "proximal",
    },
    "optimizer": {"lr": 0.05},
    "training": {"epochs": 200, "device": "cpu"},
    "pruner": {"name": "none"},
    "sampler": {"name": "tpe", "seed": 0},  # sampled, not walked as a path
    "confirm": False,
    "budget": {"n_trials": 4},
}
BUILTIN = {
    "name": "slurm-sparse",
    "workload": {"name": "sparse_regression", "params": {"n_samples": 200, "n_features": 20}},
    "search_space": {"l1": {"low": 1e-3, "high": 1e-1, "log": True}, "l2": 0.0},
    "training": {"epochs": 3, "batch_size": 200, "device": "cpu"},
    "pruner": {"name": "none"},
    "sampler": {"name": "tpe", "seed": 0},  # sampled, not walked as a path
    "confirm": False,
    "budget": {"n_trials": 5},
}


@pytest.mark.system
def test_array_at_its_time_limit_loses_no_trial_and_a_later_array_ends_the_sweeps_exactly(
    slurm: Slurm, database: str
) -> None:
    load_plugin_modules([PLUGINS])  # this process parses the specs too
    engine = create_engine_for(database)
    paced = _submit(database, PACED)

    # 1. Two workers, each with a 200 s trial, in 2-minute jobs warned 70 s before the end.
    first = slurm.sbatch(
        *ARRAY_OF_TWO,
        "--time=2",
        "--signal=B:TERM@70",
        env=_job_env(slurm, database, epoch_s=1.0),
        args=("--device", "cpu"),
    )
    wait_until(lambda: slurm.ended(first), 170, "the first array's tasks to end")
    for task in slurm.tasks(first):
        log = slurm.output(task)
        assert task["JobState"] == "COMPLETED", f"{task['JobState']} ({task['Reason']}):\n{log}"
        assert task["ExitCode"] == "0:0", log
        started, ended = (datetime.fromisoformat(task[k]) for k in ("StartTime", "EndTime"))
        assert (ended - started).total_seconds() < 120, "it should leave before its time limit"
        assert "GPUs 0" in log or "GPUs 1" in log, f"the task got no GPU of its own:\n{log}"

    trials = _trials(database, "slurm-paced")
    interrupted = [t for t in trials if t.state == TrialState.FAIL]
    assert len(interrupted) == 2, [(t.number, t.state, t.user_attrs) for t in trials]
    for trial in interrupted:
        assert trial.user_attrs["interrupted"] is True
        assert trial.user_attrs["final_failure"] is False
        assert trial.user_attrs["fail_reason"].startswith("interrupted: stopped"), trial.user_attrs
        assert trial.user_attrs["curves"]["val_loss"], "it was stopped mid-trial, after epochs"
    queued = {t.user_attrs["retry_of"]: t for t in trials if t.state == TrialState.WAITING}
    assert sorted(queued) == sorted(t.number for t in interrupted)
    assert count_trials(engine, "slurm-paced").finished == 0  # an interruption uses no budget
    assert list_workers(engine) == []  # both workers deregistered on their way out
    assert get_sweep(engine, paced).status in ("queued", "running")

    # 2. A later array, fast trials: it runs the requeued trials and a second sweep.
    builtin = _submit(database, BUILTIN)
    second = slurm.sbatch(
        *ARRAY_OF_TWO,
        "--time=10",
        env=_job_env(slurm, database, epoch_s=0.0),
        args=("--device", "cpu"),
    )
    wait_until(
        lambda: get_sweep(engine, paced).status == get_sweep(engine, builtin).status == "completed",
        180,
        "both sweeps to complete",
    )
    slurm.command("scancel", "--batch", "--signal=TERM", second)
    wait_until(lambda: slurm.ended(second), 60, "the second array to stop on scancel")
    for task in slurm.tasks(second):
        assert task["JobState"] == "COMPLETED", slurm.output(task)

    trials = _trials(database, "slurm-paced")
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == 4  # PACED's budget
    assert states.count(TrialState.FAIL) == 2
    assert TrialState.WAITING not in states
    assert TrialState.RUNNING not in states
    assert count_trials(engine, "slurm-paced").finished == 4
    for trial in interrupted:
        (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == trial.number]
        assert retry.state == TrialState.COMPLETE
        assert retry.params == trial.params
    sparse = _trials(database, "slurm-sparse")
    assert [t.state for t in sparse] == [TrialState.COMPLETE] * 5
    assert list_workers(engine) == []
    engine.dispose()
