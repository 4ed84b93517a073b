"""A population of K members trains each exactly as K separate trials with the same seeds
would: every optimizer, every method, schedules, clipping, per-group lr, pruned members and
refills (float64: parameters within 1e-10 after 50 steps; float32: the final val_loss within
1e-4 relative)."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest
import torch
from torch import nn

from regcore.regularizers import METHODS, OPTIMIZERS
from regcore.spec import SchedulerSpec
from regcore.worker.population import PopulationTrainer
from regcore.worker.training import TrainConfig, train_workload
from regcore.workloads import (
    Dataset,
    SparseRegressionWorkload,
    Workload,
    build_workload,
)

# Three members: different λ₁, λ₂ and lr each (λ₁ = 0 for weight_decay, which has none).
SETTINGS = [(1e-3, 1e-2, 0.05), (1e-2, 1e-3, 0.02), (0.0, 0.0, 0.03)]
OPTIONS: dict[str, dict[str, Any]] = {
    "sgd": {"momentum": 0.9, "nesterov": True},
    "adam": {},
    "adamw": {"betas": (0.8, 0.99)},
    "rmsprop": {"momentum": 0.5},
}


class Float64(SparseRegressionWorkload):
    """A small MLP on sparse_regression's data, in float64, scored by the default metrics
    (one vmapped forward for the whole population)."""

    name = "population_float64"
    evaluate = Workload.evaluate
    norm = False

    def load_data(self, *, seed: int) -> Dataset:
        d = super().load_data(seed=seed)
        assert isinstance(d, Dataset)
        return Dataset(
            x_train=d.x_train.double(),
            y_train=d.y_train.double(),
            x_val=d.x_val.double(),
            y_val=d.y_val.double(),
        )

    def build_model(self, *, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        width = self.params.n_features
        norm: list[nn.Module] = [nn.BatchNorm1d(8)] if self.norm else []
        return nn.Sequential(nn.Linear(width, 8), *norm, nn.ReLU(), nn.Linear(8, 1)).double()


class Float64Norm(Float64):
    """With BatchNorm (running statistics per member), scored by its own evaluate (a module
    per member, as sparse_regression is)."""

    name = "population_float64_norm"
    norm = True

    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            return {"val_loss": float(self.loss(model(x), y))}


def workload(cls: type[Float64] = Float64) -> Float64:
    params = cls.Params.model_validate({"n_samples": 120, "n_features": 10, "n_informative": 3})
    return cls(params=params)


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def member(trainer: PopulationTrainer, slot: int) -> torch.Tensor:
    """Member ``slot``'s parameters, in the model's order, as one vector."""
    return torch.cat(
        [trainer.stack.params[n][slot].detach().reshape(-1) for n in trainer.stack.names]
    )


def separately(
    w: Workload[Any], method: str, config: TrainConfig, l1: float, l2: float, lr: float
) -> Any:
    return train_workload(w, l1=l1, l2=l2, method=method, config=dataclasses.replace(config, lr=lr))


def l1_of(method: str, l1: float) -> float:
    return 0.0 if method == "weight_decay" else l1


@pytest.mark.parametrize(
    ("optimizer", "method"),
    [
        (o, m)
        for o, m in itertools.product(OPTIMIZERS, METHODS)
        if not (o == "adamw" and m == "weight_decay")  # refused by the spec: coupled decay
    ],
)
def test_every_member_trains_as_its_own_trial(optimizer: str, method: str) -> None:
    w = workload()
    # 120 rows in batches of 12: 10 steps an epoch, 5 epochs = 50 steps.
    config = TrainConfig(
        epochs=5, batch_size=12, optimizer=optimizer, lr=0.05, device="cpu", **OPTIONS[optimizer]
    )
    trainer = PopulationTrainer(w, method=method, config=config, k=len(SETTINGS))
    for slot, (l1, l2, lr) in enumerate(SETTINGS):
        trainer.add(slot, l1=l1_of(method, l1), l2=l2, lr=lr)
    for _ in range(config.epochs):
        metrics = trainer.epoch()
    for slot, (l1, l2, lr) in enumerate(SETTINGS):
        single = separately(w, method, config, l1_of(method, l1), l2, lr)
        assert single.model is not None
        difference = (member(trainer, slot) - flat(single.model)).abs().max()
        assert float(difference) <= 1e-10
        assert metrics[slot]["val_loss"] == pytest.approx(single.metrics["val_loss"], abs=1e-10)
        for key in ("sparsity", "sparsity_1e-3", "l1_norm", "l2_norm", "train_loss"):
            assert metrics[slot][key] == pytest.approx(single.metrics[key], rel=1e-9, abs=1e-12)


SCHEDULES = {
    "cosine, warmup, clipping, lr_mult": {
        "scheduler": SchedulerSpec(name="cosine", warmup_epochs=1, min_lr_ratio=0.1),
        "clip_grad_norm": 0.5,
        "lr_mult": {"0.*": 0.3},
    },
    "step": {"scheduler": SchedulerSpec(name="step", step_epochs=2, gamma=0.5)},
    "plateau, tight clipping": {
        "scheduler": SchedulerSpec(name="plateau", patience=0, gamma=0.5),
        "clip_grad_norm": 0.05,
    },
}


@pytest.mark.parametrize("method", ["fused", "decoupled", "proximal"])
@pytest.mark.parametrize("loop", SCHEDULES.values(), ids=SCHEDULES.keys())
@pytest.mark.parametrize(("cls", "tolerance"), [(Float64, 1e-10), (Float64Norm, 1e-8)])
def test_a_refill_trains_as_its_own_trial_beside_members_further_on(
    method: str, loop: dict[str, Any], cls: type[Float64], tolerance: float
) -> None:
    """Member 1 is pruned after 2 epochs; a new member takes its slot at its own epoch 0
    while member 0 goes on at epoch 3 (each reads its own epoch's batches)."""
    w = workload(cls)
    config = TrainConfig(epochs=6, batch_size=24, optimizer="adam", lr=0.05, device="cpu", **loop)
    trainer = PopulationTrainer(w, method=method, config=config, k=2)
    trainer.add(0, l1=1e-3, l2=1e-2, lr=0.05)
    trainer.add(1, l1=1e-2, l2=1e-3, lr=0.02)
    for epoch in range(6):
        if epoch == 2:
            trainer.remove(1)
            trainer.add(1, l1=3e-3, l2=3e-3, lr=0.04)
        trainer.epoch()
    first = separately(w, method, config, 1e-3, 1e-2, 0.05)
    trainer.remove(0)
    for _ in range(2):  # the refill's last two epochs, alone
        metrics = trainer.epoch()
    refill = separately(w, method, config, 3e-3, 3e-3, 0.04)
    assert refill.model is not None
    assert first.model is not None
    # BatchNorm's batch statistics come from vmap's batched kernel, whose sums run in
    # another order than the plain layer's: equal to 1e-8, not 1e-10.
    assert float((member(trainer, 1) - flat(refill.model)).abs().max()) <= tolerance
    assert metrics[1]["val_loss"] == pytest.approx(refill.metrics["val_loss"], rel=tolerance)
    for name, buffer in refill.model.named_buffers():
        if buffer.is_floating_point():
            assert torch.allclose(trainer.stack.buffers[name][1], buffer, atol=tolerance, rtol=0)
    del first  # member 0 was measured above against its own run in the same trainer


def test_float32_members_end_with_their_own_trials_val_loss() -> None:
    """The main job's network in float32: the final val_loss within 1e-4 relative."""
    w = build_workload("digits_mlp", {"hidden": [64, 64], "train_size": 150})
    config = TrainConfig(epochs=10, batch_size=32, optimizer="adam", lr=1e-3, device="cpu")
    settings = [(1e-4, 1e-3, 1e-3), (0.0, 0.0, 2e-3), (1e-3, 1e-4, 5e-4), (3e-5, 3e-3, 1e-3)]
    for method in ("fused", "proximal"):
        trainer = PopulationTrainer(w, method=method, config=config, k=len(settings))
        for slot, (l1, l2, lr) in enumerate(settings):
            trainer.add(slot, l1=l1, l2=l2, lr=lr)
        for _ in range(config.epochs):
            metrics = trainer.epoch()
        for slot, (l1, l2, lr) in enumerate(settings):
            single = separately(w, method, config, l1, l2, lr)
            assert metrics[slot]["val_loss"] == pytest.approx(single.metrics["val_loss"], rel=1e-4)
            assert metrics[slot]["sparsity"] == pytest.approx(single.metrics["sparsity"], abs=1e-3)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize(
    ("optimizer", "method"),
    [("sgd", "fused"), ("adam", "proximal"), ("adamw", "decoupled"), ("rmsprop", "loss")],
)
def test_every_member_trains_as_its_own_trial_on_cuda(optimizer: str, method: str) -> None:
    w = workload()
    config = TrainConfig(
        epochs=5, batch_size=12, optimizer=optimizer, lr=0.05, device="cuda", **OPTIONS[optimizer]
    )
    trainer = PopulationTrainer(w, method=method, config=config, k=len(SETTINGS))
    for slot, (l1, l2, lr) in enumerate(SETTINGS):
        trainer.add(slot, l1=l1, l2=l2, lr=lr)
    for _ in range(config.epochs):
        trainer.epoch()
    for slot, (l1, l2, lr) in enumerate(SETTINGS):
        single = separately(w, method, config, l1, l2, lr)
        assert single.model is not None
        # cuBLAS' batched products sum in another order than its plain ones.
        difference = (member(trainer, slot) - flat(single.model)).abs().max()
        assert float(difference) <= 1e-8
