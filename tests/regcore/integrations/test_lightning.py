"""Regularize in a real Lightning Trainer trains what the plain loop with a Regularizer
trains (float64, to 1e-10), for every method, with clipping, gradient accumulation and a
closure-stepped optimizer; and bf16 mixed precision runs every method that it allows."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from regcore.regularizers import METHODS
from tests.regcore.integrations.models import (
    BATCH,
    L2,
    OPTIMIZERS,
    data,
    groups,
    l1_for,
    max_abs_diff,
    model,
    plain_loop,
)

lightning = pytest.importorskip("lightning.pytorch")
from regcore.integrations.lightning import Regularize  # noqa: E402


class Module(lightning.LightningModule):  # type: ignore[misc,name-defined]
    def __init__(self, optimizer: str) -> None:
        super().__init__()
        self.net = model()
        self.optimizer = optimizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return OPTIMIZERS[self.optimizer](groups(self.net))


def fit(module: Module, *, steps: int, callbacks: list[Any], **options: Any) -> nn.Module:
    dtype = options.pop("dtype", torch.float64)
    x, y = (t.to(dtype) for t in data())
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=False)
    trainer = lightning.Trainer(
        max_steps=steps,
        callbacks=callbacks,
        accelerator="cpu",
        precision=options.pop("precision", "64-true"),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **options,
    )
    trainer.fit(module, train_dataloaders=loader)
    return module.net


def regularize(method: str) -> Regularize:
    return Regularize(l1=l1_for(method), l2=L2, method=method)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_as_the_plain_loop(method: str, optimizer: str) -> None:
    trained = fit(Module(optimizer), steps=12, callbacks=[regularize(method)])
    assert max_abs_diff(trained, plain_loop(method, optimizer, steps=12)) <= 1e-10


@pytest.mark.parametrize("method", METHODS)
def test_the_clip_acts_on_the_data_gradient_only(method: str) -> None:
    # 0.05 is far below the gradient's norm: every step is clipped.
    trained = fit(Module("sgd"), steps=12, callbacks=[regularize(method)], gradient_clip_val=0.05)
    assert max_abs_diff(trained, plain_loop(method, "sgd", steps=12, clip=0.05)) <= 1e-10
    if method in ("loss", "hook"):  # not the clip of everything in .grad
        clipped_all = plain_loop(method, "sgd", steps=12, clip=0.05, penalty_clipped=True)
        assert max_abs_diff(trained, clipped_all) > 1e-6


@pytest.mark.parametrize("method", METHODS)
def test_gradient_accumulation_applies_lambda_once_per_step(method: str) -> None:
    trained = fit(
        Module("adam"), steps=6, callbacks=[regularize(method)], accumulate_grad_batches=2
    )
    assert max_abs_diff(trained, plain_loop(method, "adam", steps=6, accumulate=2)) <= 1e-10


def test_without_the_callback_the_model_trains_unregularized() -> None:
    trained = fit(Module("adam"), steps=12, callbacks=[])
    assert max_abs_diff(trained, plain_loop("fused", "adam", steps=12)) > 1e-6


@pytest.mark.parametrize("method", ["loss", "hook", "fused", "proximal"])
def test_a_pytorch_lightning_trainer_takes_the_same_callback(method: str) -> None:
    pl = pytest.importorskip("pytorch_lightning")

    class Old(pl.LightningModule):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.net = model()

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return OPTIMIZERS["adam"](groups(self.net))

    x, y = data()
    module = Old()
    trainer = pl.Trainer(
        max_steps=8,
        callbacks=[regularize(method)],
        accelerator="cpu",
        precision="64-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=DataLoader(TensorDataset(x, y), batch_size=BATCH))
    assert max_abs_diff(module.net, plain_loop(method, "adam", steps=8)) <= 1e-10


@pytest.mark.parametrize("method", METHODS)
def test_bf16_mixed_precision_trains_as_the_plain_loop_under_autocast(method: str) -> None:
    module = Module("adam")
    module.net.float()
    trained = fit(
        module, steps=6, callbacks=[regularize(method)], precision="bf16-mixed", dtype=torch.float32
    )

    from regcore.regularizers import Regularizer

    net = model().float()
    x, y = (t.float() for t in data())
    reg = Regularizer(net, l1=l1_for(method), l2=L2, method=method)
    opt = OPTIMIZERS["adam"](groups(net))
    reg.attach(opt)
    for step in range(6):
        i = (step * BATCH) % len(x)
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.mse_loss(net(x[i : i + BATCH]), y[i : i + BATCH])
        reg.penalize(loss).backward()  # type: ignore[no-untyped-call]
        opt.step()
    assert max_abs_diff(trained, net) <= 1e-6


def test_the_callback_leaves_nothing_behind() -> None:
    module = Module("adam")
    callback = regularize("loss")
    fit(module, steps=2, callbacks=[callback])
    assert "training_step" not in vars(module)  # the class's own again
    assert callback.regularizers == []


def test_loss_under_manual_optimization_is_refused() -> None:
    class Manual(Module):
        def __init__(self) -> None:
            super().__init__("adam")
            self.automatic_optimization = False

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            opt = self.optimizers()
            loss = super().training_step(batch, batch_idx)
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
            return loss

    with pytest.raises(ValueError, match="method='loss' adds R"):
        fit(Manual(), steps=2, callbacks=[regularize("loss")])
    trained = fit(Manual(), steps=6, callbacks=[regularize("fused")])
    assert max_abs_diff(trained, plain_loop("fused", "adam", steps=6)) <= 1e-10


def _import_with(blocked: list[str]) -> subprocess.CompletedProcess[str]:
    """Import the integration in a fresh interpreter where ``blocked`` are not installed."""
    code = (
        "import sys\n"
        + "".join(f"sys.modules[{name!r}] = None\n" for name in blocked)
        + "from regcore.integrations.lightning import Regularize\n"
        + "print(sorted(b.__module__.split('.')[0] for b in Regularize.__mro__[2:-1]))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_either_lightning_package_is_enough() -> None:
    pytest.importorskip("pytorch_lightning")
    only_old = _import_with(["lightning", "lightning.pytorch"])
    assert only_old.returncode == 0, only_old.stderr
    assert "pytorch_lightning" in only_old.stdout
    assert "'lightning'" not in only_old.stdout
    neither = _import_with(["lightning", "lightning.pytorch", "pytorch_lightning"])
    assert neither.returncode != 0
    assert "pip install 'regsweep[lightning]'" in neither.stderr
