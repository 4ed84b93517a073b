"""TrialCallback in real Lightning and HF Trainers, with the TrialContext a worker hands a
training function: each validation epoch is reported once (not the sanity check, not an
evaluate() after training), a pruned or stopped trial stops the trainer and TrialStopped
reaches the training function, and the Regularize callback's Regularizer reaches the trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from regcore.workloads import TrialContext, TrialStopped
from tests.regcore.integrations.models import BATCH, OPTIMIZERS, data, groups, model


def context(*, prune_after: int | None = None, stop_after: int | None = None) -> TrialContext:
    """A trial as the worker's child process sees it: ``report`` raises when the worker
    answers prune (after ``prune_after`` reports), ``should_stop`` turns true after
    ``stop_after`` checks."""
    reports: list[int] = []
    checks: list[int] = []

    def report(epoch: int, metrics: dict[str, float]) -> None:
        reports.append(epoch)
        if prune_after is not None and len(reports) > prune_after:
            raise TrialStopped(f"pruned after epoch {epoch + 1}", pruned=True)

    def should_stop() -> bool:
        checks.append(1)
        return stop_after is not None and len(checks) > stop_after

    return TrialContext(
        l1=1e-3,
        l2=1e-3,
        method="fused",
        lr=1e-2,
        epochs=4,
        seed=0,
        device=torch.device("cpu"),
        params={},
        data_dir=None,
        number=0,
        _report=report,
        _should_stop=should_stop,
    )


# -- Lightning ---------------------------------------------------------------------------------


def lightning_fit(ctx: TrialContext, epochs: int = 4) -> Any:
    pl = pytest.importorskip("lightning.pytorch")
    from regcore.integrations.lightning import Regularize, TrialCallback

    class Module(pl.LightningModule):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.net = model()

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return nn.functional.mse_loss(self.net(batch[0]), batch[1])

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            self.log("val_loss", nn.functional.mse_loss(self.net(batch[0]), batch[1]))

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return OPTIMIZERS["adam"](groups(self.net))

    loader = DataLoader(TensorDataset(*data()), batch_size=BATCH)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        precision="64-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Regularize(l1=ctx.l1, l2=ctx.l2, method=ctx.method), TrialCallback(ctx)],
    )
    trainer.fit(Module(), train_dataloaders=loader, val_dataloaders=loader)
    return trainer


def test_lightning_reports_each_validation_epoch_once() -> None:
    ctx = context()
    trainer = lightning_fit(ctx)
    assert [h["epoch"] for h in ctx.history] == [0.0, 1.0, 2.0, 3.0]  # no sanity check
    assert ctx.history[-1]["val_loss"] == pytest.approx(float(trainer.callback_metrics["val_loss"]))
    assert len(ctx.regularizers) == 1  # the trial records its sparsity and norms


def test_lightning_stops_a_pruned_trial_and_the_function_sees_it() -> None:
    ctx = context(prune_after=1)
    with pytest.raises(TrialStopped) as stopped:
        lightning_fit(ctx, epochs=10)
    assert stopped.value.pruned
    assert len(ctx.history) == 2  # the second report was the pruner's last


def test_lightning_stops_when_the_trial_must_stop() -> None:
    ctx = context(stop_after=5)  # the sixth training batch
    with pytest.raises(TrialStopped) as stopped:
        lightning_fit(ctx, epochs=10)
    assert not stopped.value.pruned
    assert len(ctx.history) == 1  # 4 batches an epoch: stopped in the second


# -- Hugging Face ------------------------------------------------------------------------------


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = model()

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, Any]:
        out = self.net(x)
        loss = None if labels is None else nn.functional.mse_loss(out, labels)
        return {"loss": loss, "logits": out}


def hf_train(tmp_path: Path, ctx: TrialContext, epochs: int = 4) -> Any:
    transformers = pytest.importorskip("transformers")
    from regcore.integrations.transformers import Regularize, TrialCallback

    x, y = data()
    rows = [{"x": x[i], "labels": y[i]} for i in range(len(x))]
    net = Net()
    trainer = transformers.Trainer(
        model=net,
        args=transformers.TrainingArguments(
            output_dir=str(tmp_path),
            per_device_train_batch_size=BATCH,
            num_train_epochs=epochs,
            eval_strategy="epoch",
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
            use_cpu=True,
            weight_decay=0.0,
        ),
        train_dataset=rows,
        eval_dataset=rows,
        optimizers=(OPTIMIZERS["adam"](groups(net.net)), None),
        callbacks=[Regularize(l1=ctx.l1, l2=ctx.l2, method=ctx.method), TrialCallback(ctx)],
    )
    trainer.train()
    return trainer


def test_hf_reports_each_evaluation_once_with_val_names(tmp_path: Path) -> None:
    ctx = context()
    trainer = hf_train(tmp_path, ctx)
    assert [h["epoch"] for h in ctx.history] == [0.0, 1.0, 2.0, 3.0]
    assert ctx.history[-1]["val_loss"] == ctx.history[-1]["eval_loss"]
    trainer.evaluate()  # after training: not one of the trial's epochs
    assert len(ctx.history) == 4
    assert len(ctx.regularizers) == 1


def test_hf_stops_a_pruned_trial_and_the_function_sees_it(tmp_path: Path) -> None:
    ctx = context(prune_after=1)
    with pytest.raises(TrialStopped) as stopped:
        hf_train(tmp_path, ctx, epochs=10)
    assert stopped.value.pruned
    assert len(ctx.history) == 2


def test_hf_stops_when_the_trial_must_stop(tmp_path: Path) -> None:
    ctx = context(stop_after=5)
    with pytest.raises(TrialStopped) as stopped:
        hf_train(tmp_path, ctx, epochs=10)
    assert not stopped.value.pruned
    assert len(ctx.history) == 1
