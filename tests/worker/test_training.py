"""The training loop every trial runs."""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import pytest
import torch
from torch import nn

from regcore.regularizers import Regularizer
from regcore.spec import SchedulerSpec
from regcore.worker.training import (
    DivergedError,
    TrainConfig,
    TrainingInterrupted,
    TrainResult,
    train_workload,
)
from regcore.workloads import Dataset, Workload, WorkloadParams, build_workload
from regcore.workloads._digits import DigitsMLPParams
from tests.worker.datasets import DigitsAsDatasets

SPARSE = {"n_samples": 200, "n_features": 20, "n_informative": 3}
DIGITS: dict[str, Any] = {"hidden": [16], "train_size": 100}


def test_same_seed_and_parameters_give_the_same_result_on_cpu() -> None:
    workload = build_workload("digits_mlp", {"hidden": [32], "train_size": 100})
    config = TrainConfig(epochs=2, batch_size=32, seed=3, device="cpu")
    first = train_workload(workload, l1=1e-4, l2=1e-3, method="proximal", config=config)
    second = train_workload(workload, l1=1e-4, l2=1e-3, method="proximal", config=config)
    assert first.metrics == {**second.metrics, "step_time_ms": first.metrics["step_time_ms"]}
    assert first.model is not None
    assert second.model is not None
    for p, q in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_every_epoch_reports_validation_and_regularization_metrics() -> None:
    workload = build_workload("sparse_regression", SPARSE)
    seen: list[int] = []
    result = train_workload(
        workload,
        l1=1e-2,
        l2=0.0,
        method="proximal",
        config=TrainConfig(epochs=3, batch_size=64, device="cpu"),
        on_epoch=lambda epoch, metrics: seen.append(epoch),
    )
    assert seen == [0, 1, 2]
    assert result.epochs_run == 3
    expected = {"val_loss", "support_f1", "sparsity", "sparsity_1e-3", "l1_norm", "l2_norm"}
    assert expected <= set(result.metrics)
    assert {"train_loss", "step_time_ms"} <= set(result.metrics)


def test_a_diverging_loss_raises_diverged_error() -> None:
    workload = build_workload("diabetes_linear", {})
    config = TrainConfig(epochs=5, batch_size=32, optimizer="sgd", lr=1e6, device="cpu")
    with pytest.raises(DivergedError, match="too large"):
        train_workload(workload, l1=0.0, l2=0.0, method="fused", config=config)


def test_should_stop_interrupts_before_the_next_step() -> None:
    workload = build_workload("sparse_regression", SPARSE)
    with pytest.raises(TrainingInterrupted, match="epoch 1"):
        train_workload(
            workload,
            l1=0.0,
            l2=0.0,
            method="fused",
            config=TrainConfig(epochs=3, device="cpu"),
            should_stop=lambda: True,
        )


def test_asking_for_cuda_without_one_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    workload = build_workload("sparse_regression", SPARSE)
    with pytest.raises(ValueError, match="no CUDA device is available"):
        train_workload(
            workload, l1=0, l2=0, method="fused", config=TrainConfig(epochs=1, device="cuda")
        )


# ---- the tensor path and the Datasets path ---------------------------------------------------


def plain_loop(
    workload: Workload[Any], *, l1: float, l2: float, method: str, config: TrainConfig
) -> tuple[nn.Module, dict[str, float]]:
    """The loop as it was before schedules, clipping and Datasets: Adam on the Regularizer's
    groups, one permutation of the training rows an epoch from the seed, evaluation on the
    validation tensors."""
    torch.manual_seed(config.seed)
    data = workload.load_data(seed=config.seed)
    assert isinstance(data, Dataset)
    model = workload.build_model(seed=config.seed)
    reg = Regularizer(model, l1=l1, l2=l2, method=method)
    optimizer = torch.optim.Adam(reg.param_groups(), lr=config.lr)
    reg.attach(optimizer)
    generator = torch.Generator().manual_seed(config.seed)
    n = data.x_train.shape[0]
    for _ in range(config.epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, config.batch_size):
            index = order[start : start + config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = workload.loss(model(data.x_train[index]), data.y_train[index])
            reg.penalize(loss).backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    model.eval()
    return model, workload.evaluate(model, data.x_val, data.y_val)


def same_weights(a: nn.Module | None, b: nn.Module | None, *, atol: float = 0.0) -> bool:
    assert a is not None
    assert b is not None
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return all(torch.allclose(p.cpu(), q.cpu(), rtol=0.0, atol=atol) for p, q in pairs)


@pytest.mark.parametrize("method", ["proximal", "weight_decay"])
def test_the_tensor_path_trains_as_the_plain_loop_did(method: str) -> None:
    workload = build_workload("digits_mlp", {**DIGITS, "dropout": 0.2})
    config = TrainConfig(epochs=2, batch_size=32, lr=0.01, seed=5, device="cpu")
    l1 = 1e-3 if method == "proximal" else 0.0
    result = train_workload(workload, l1=l1, l2=1e-3, method=method, config=config)
    model, metrics = plain_loop(workload, l1=l1, l2=1e-3, method=method, config=config)
    assert same_weights(result.model, model)
    assert {k: result.metrics[k] for k in metrics} == metrics


def train_digits(
    workload: Workload[Any], *, method: str = "fused", l1: float = 1e-4, **config: Any
) -> TrainResult:
    settings: dict[str, Any] = {
        "epochs": 2,
        "batch_size": 32,
        "lr": 0.01,
        "seed": 1,
        "device": "cpu",
        **config,
    }
    return train_workload(workload, l1=l1, l2=1e-3, method=method, config=TrainConfig(**settings))


def test_a_datasets_workload_trains_like_the_same_data_as_tensors() -> None:
    params = {**DIGITS, "dropout": 0.2}  # dropout: the loaders leave the global RNG alone
    tensors = train_digits(build_workload("digits_mlp", params))
    loaded = train_digits(DigitsAsDatasets(params=DigitsMLPParams.model_validate(params)))
    assert same_weights(tensors.model, loaded.model, atol=1e-6)
    assert set(loaded.metrics) == set(tensors.metrics)
    for name in ("val_loss", "val_accuracy", "train_loss", "sparsity", "l1_norm", "l2_norm"):
        assert loaded.metrics[name] == pytest.approx(tensors.metrics[name], abs=1e-6), name


def test_a_datasets_workloads_batched_evaluation_equals_the_tensor_evaluation() -> None:
    params = DigitsMLPParams.model_validate(DIGITS)
    result = train_digits(DigitsAsDatasets(params=params), batch_size=7)  # 450 = 64·7 + 2
    assert result.model is not None
    model = result.model.eval()
    tensors = build_workload("digits_mlp", DIGITS)
    data = tensors.load_data(seed=0)
    assert isinstance(data, Dataset)
    expected = tensors.evaluate(model, data.x_val, data.y_val)
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(value, abs=1e-6), name


def test_num_workers_2_trains_like_num_workers_0() -> None:
    workload = DigitsAsDatasets(params=DigitsMLPParams.model_validate(DIGITS))
    inline = train_digits(workload, num_workers=0)
    workers = train_digits(workload, num_workers=2)
    assert same_weights(inline.model, workers.model)
    assert workers.metrics["val_loss"] == inline.metrics["val_loss"]


@pytest.mark.parametrize("datasets", [False, True], ids=["tensors", "datasets"])
def test_bf16_precision_still_trains(datasets: bool, device: torch.device) -> None:
    workload: Workload[Any] = (
        DigitsAsDatasets(params=DigitsMLPParams.model_validate(DIGITS))
        if datasets
        else build_workload("digits_mlp", DIGITS)
    )
    result = train_digits(workload, precision="bf16", device=str(device), lr=0.05)
    assert result.epochs_run == 2
    assert all(math.isfinite(v) for k, v in result.metrics.items() if k != "step_time_ms")
    assert result.history[-1]["val_loss"] < result.history[0]["train_loss"]  # it learned


def test_history_holds_one_entry_per_epoch_with_train_and_val_loss() -> None:
    result = train_digits(build_workload("digits_mlp", DIGITS), epochs=3)
    assert len(result.history) == result.epochs_run == 3
    for metrics in result.history:
        assert math.isfinite(metrics["train_loss"])
        assert math.isfinite(metrics["val_loss"])
    assert result.history[-1].items() <= result.metrics.items()  # the last epoch's, and:
    assert {"sparsity", "l1_norm", "l2_norm"} <= result.metrics.keys()  # of the final model
    assert "sparsity" not in result.history[0]  # not measured every epoch, unless monitored
    assert result.history[0]["train_loss"] != result.history[-1]["train_loss"]


def test_a_monitored_regularization_metric_is_measured_every_epoch() -> None:
    workload = build_workload("digits_mlp", DIGITS)
    config = TrainConfig(epochs=2, batch_size=32, device="cpu", monitor="sparsity")
    result = train_workload(workload, l1=1e-3, l2=0.0, method="proximal", config=config)
    assert all("sparsity" in metrics for metrics in result.history)


# ---- what the spec's loop settings do to training -----------------------------------------


class ProbeParams(WorkloadParams):
    pass


class Probed(nn.Module):
    """A linear model and a probe weight whose data gradient is exactly 0."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 1)
        self.probe = nn.Parameter(torch.ones(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x) + 0.0 * self.probe.sum()
        return out


class ProbeRegression(Workload[ProbeParams]):
    """y = Σx on 48 training rows. With plain SGD and method ``decoupled``, only the decay
    moves the probe: ``probe ← (1 − 2λ₂·lr)·probe`` each step, so it tells every step's lr."""

    name = "test_probe_regression"
    task = "regression"
    Params = ProbeParams
    metrics = ("val_loss",)

    def __init__(self) -> None:
        super().__init__(params=ProbeParams())
        self.built: Probed | None = None

    def load_data(self, *, seed: int) -> Dataset:
        x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
        y = x.sum(dim=1, keepdim=True)
        return Dataset(x_train=x[:48], y_train=y[:48], x_val=x[48:], y_val=y[48:])

    def build_model(self, *, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        self.built = Probed()
        return self.built


def step_lrs(config: TrainConfig, *, l2: float = 0.5) -> list[float]:
    """Every step's lr (one step an epoch: batch_size 48), read off the probe's decay."""
    workload = ProbeRegression()
    probes = [1.0]

    def after_epoch(epoch: int, metrics: dict[str, float]) -> None:
        assert workload.built is not None
        probes.append(float(workload.built.probe.detach()[0, 0]))

    train_workload(workload, l1=0.0, l2=l2, method="decoupled", config=config, on_epoch=after_epoch)
    return [(1 - b / a) / (2 * l2) for a, b in itertools.pairwise(probes)]


PROBE = TrainConfig(epochs=6, batch_size=48, optimizer="sgd", lr=0.2, device="cpu")


def test_the_probe_reads_a_constant_lr_without_a_schedule() -> None:
    assert step_lrs(PROBE) == pytest.approx([0.2] * 6, rel=1e-4)


def test_a_cosine_schedule_with_warmup_reaches_the_training() -> None:
    scheduler = SchedulerSpec(name="cosine", warmup_epochs=2, min_lr_ratio=0.25)
    lrs = step_lrs(dataclasses.replace(PROBE, scheduler=scheduler))
    cosine = [0.05 + 0.15 * 0.5 * (1 + math.cos(math.pi * k / 3)) for k in range(4)]
    assert lrs == pytest.approx([0.1, 0.2, *cosine], rel=1e-4)
    assert lrs[-1] == pytest.approx(0.25 * 0.2, rel=1e-4)  # the last step: min_lr_ratio·lr


def test_lr_mult_reaches_the_training_under_a_schedule() -> None:
    scheduler = SchedulerSpec(name="step", step_epochs=2, gamma=0.5)
    config = dataclasses.replace(PROBE, scheduler=scheduler, lr_mult={"probe": 0.5})
    assert step_lrs(config) == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025], rel=1e-4)


def test_a_plateau_schedule_watches_the_monitored_metric() -> None:
    # sparsity stays 0 (decoupled λ₂ only shrinks): never better, so with patience 0 every
    # epoch after the first halves the lr, whichever direction is better.
    scheduler = SchedulerSpec(name="plateau", patience=0, gamma=0.5)
    for maximize in (False, True):
        config = dataclasses.replace(
            PROBE, scheduler=scheduler, monitor="sparsity", maximize=maximize
        )
        assert step_lrs(config) == pytest.approx([0.2, 0.2, 0.1, 0.05, 0.025, 0.0125], rel=1e-4)


def one_step(workload: Workload[Any], **config: Any) -> tuple[nn.Module, nn.Module]:
    """The model before and after one full-batch SGD step without regularization."""
    settings: dict[str, Any] = {
        "epochs": 1,
        "batch_size": 1000,
        "optimizer": "sgd",
        "lr": 0.5,
        "device": "cpu",
    }
    settings.update(config)
    result = train_workload(
        workload, l1=0.0, l2=0.0, method="fused", config=TrainConfig(**settings)
    )
    assert result.model is not None
    return workload.build_model(seed=settings.get("seed", 0)), result.model


def step_norm(before: nn.Module, after: nn.Module) -> float:
    deltas = [
        (q - p).detach() for p, q in zip(before.parameters(), after.parameters(), strict=True)
    ]
    return float(torch.linalg.vector_norm(torch.cat([d.reshape(-1) for d in deltas])))


def test_clip_grad_norm_bounds_the_step_by_lr_times_max_norm() -> None:
    workload = build_workload("digits_mlp", DIGITS)
    before, unclipped = one_step(workload)
    assert step_norm(before, unclipped) > 0.5 * 1e-2  # the gradient's norm is well above 1e-3
    _, clipped = one_step(workload, clip_grad_norm=1e-3)
    assert step_norm(before, clipped) == pytest.approx(0.5 * 1e-3, rel=1e-3)
    _, loose = one_step(workload, clip_grad_norm=1e9)
    assert same_weights(loose, unclipped)  # a bound above the norm changes nothing


def test_clip_grad_norm_changes_what_a_run_learns() -> None:
    workload = build_workload("digits_mlp", DIGITS)
    free = train_digits(workload, lr=0.05)
    clipped = train_digits(workload, lr=0.05, clip_grad_norm=0.05)
    assert not same_weights(free.model, clipped.model, atol=1e-4)


def test_lr_mult_scales_the_matching_parameters_step() -> None:
    workload = build_workload("digits_mlp", DIGITS)
    before, plain = one_step(workload)
    _, scaled = one_step(workload, lr_mult={"2.*": 0.25})
    old = dict(before.named_parameters())
    for name, p in plain.named_parameters():
        q = dict(scaled.named_parameters())[name]
        mult = 0.25 if name.startswith("2.") else 1.0
        assert torch.allclose(q - old[name], mult * (p - old[name]), atol=1e-7), name


def sparse_digits(**config: Any) -> TrainResult:
    """Digits with a λ₁ that zeroes what it regularizes (proximal)."""
    workload = build_workload("digits_mlp", DIGITS)
    return train_digits(workload, method="proximal", l1=0.5, lr=0.05, epochs=3, **config)


def zeros(t: torch.Tensor) -> float:
    return float((t == 0).float().mean())


def test_only_regularizes_the_matching_parameters_and_measures_them_alone() -> None:
    result = sparse_digits(only=["0.*"])
    assert result.model is not None
    p = {name: t.detach() for name, t in result.model.named_parameters()}
    assert zeros(p["0.weight"]) > 0.5
    for name in ("0.bias", "2.weight", "2.bias"):  # 0.bias: the default rule still applies
        assert zeros(p[name]) == 0.0, name
    assert result.metrics["sparsity"] == pytest.approx(zeros(p["0.weight"]))
    assert result.metrics["l1_norm"] == pytest.approx(float(p["0.weight"].abs().sum()), rel=1e-5)


def test_exclude_replaces_the_default_rule() -> None:
    result = sparse_digits(exclude=["2.*"])
    assert result.model is not None
    p = {name: t.detach() for name, t in result.model.named_parameters()}
    assert zeros(p["0.weight"]) > 0.5
    assert zeros(p["0.bias"]) > 0.0  # a bias, regularized once exclude names the others
    assert zeros(p["2.weight"]) == zeros(p["2.bias"]) == 0.0
    regularized = torch.cat([p["0.weight"].reshape(-1), p["0.bias"]])
    assert result.metrics["sparsity"] == pytest.approx(zeros(regularized))
    assert result.metrics["l1_norm"] == pytest.approx(float(regularized.abs().sum()), rel=1e-5)


def test_without_only_or_exclude_every_weight_matrix_is_regularized() -> None:
    result = sparse_digits()
    assert result.model is not None
    p = {name: t.detach() for name, t in result.model.named_parameters()}
    assert zeros(p["0.weight"]) > 0.5
    assert zeros(p["2.weight"]) > 0.0
    assert zeros(p["0.bias"]) == zeros(p["2.bias"]) == 0.0
