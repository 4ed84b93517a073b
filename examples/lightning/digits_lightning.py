"""A user's own LightningModule and DataModule, swept by regsweep as a training function.

The module and the data are plain Lightning; the training function is the few lines at the
end: two callbacks carry the trial's λ₁, λ₂ and method into the Trainer and its validation
metrics back to the trial (pruning, cancel, deadline). Run it:

    REGSWEEP_PLUGINS=digits_lightning PYTHONPATH=examples/lightning \\
        regsweep run examples/lightning/sweep.yaml
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from regcore.integrations.lightning import Regularize, TrialCallback
from regcore.workloads import TrialContext, training_function


class DigitsData(L.LightningDataModule):
    """scikit-learn's 8×8 digits (they ship inside the package), split 75/25 by ``seed``."""

    def __init__(self, *, batch_size: int = 64, seed: int = 0) -> None:
        super().__init__()
        self.batch_size, self.seed = batch_size, seed

    def setup(self, stage: str) -> None:
        x, y = load_digits(return_X_y=True)
        x = torch.tensor(x / 16.0, dtype=torch.float32)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))
        cut = len(x) * 3 // 4
        self.train = TensorDataset(x[order[:cut]], torch.tensor(y)[order[:cut]])
        self.val = TensorDataset(x[order[cut:]], torch.tensor(y)[order[cut:]])

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.val, batch_size=512)


class DigitsClassifier(L.LightningModule):
    def __init__(self, *, hidden: int = 64, lr: float = 1e-3) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
        self.lr = lr

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


@training_function(name="digits_lightning", metrics=("val_loss", "val_acc"), maximize=("val_acc",))
def train(ctx: TrialContext) -> dict[str, float]:
    L.seed_everything(ctx.seed, verbose=False)
    trainer = L.Trainer(
        max_epochs=ctx.epochs,
        accelerator="gpu" if ctx.device.type == "cuda" else "cpu",
        callbacks=[Regularize(l1=ctx.l1, l2=ctx.l2, method=ctx.method), TrialCallback(ctx)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    module = DigitsClassifier(hidden=ctx.params.get("hidden", 64), lr=ctx.lr)
    trainer.fit(module, datamodule=DigitsData(seed=ctx.seed))
    return {name: float(trainer.callback_metrics[name]) for name in ("val_loss", "val_acc")}
