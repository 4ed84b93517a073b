"""A small CNN trained by its own loop, swept by regsweep.

Everything a real training setup has is here, in plain PyTorch: a DataLoader with
augmentation, AdamW, a cosine schedule with warmup, gradient clipping, bf16 autocast,
BatchNorm and dropout, top-3 accuracy as the objective. regsweep brings the λ₁, λ₂ and
method of each trial (``ctx.regularizer``), the searched ``width`` (``ctx.params``), the
pruner and the stop requests (``ctx.report``).
"""

from __future__ import annotations

import math

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.utils.data import DataLoader

from own_model.data import N_CLASSES, Images, make_images
from regcore.workloads import TrialContext, training_function


class Params(BaseModel):
    """What a spec may set in workload.params or search in search_space.params."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(default=32, ge=4, le=256, description="channels of the first block")
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    n_train: int = Field(default=256, ge=32)
    n_val: int = Field(default=512, ge=32)
    batch_size: int = Field(default=64, ge=1)
    warmup_epochs: int = Field(default=1, ge=0)
    clip: float = Field(default=1.0, gt=0, description="max norm of the data gradient")
    num_workers: int = Field(default=0, ge=0)


def build(width: int, dropout: float) -> nn.Module:
    def block(c_in: int, c_out: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )

    return nn.Sequential(
        block(3, width),
        block(width, 2 * width),
        block(2 * width, 2 * width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(2 * width, N_CLASSES),
    )


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
    model.eval()
    loss_sum, top3, n = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logits = model(x)
        loss_sum += float(nn.functional.cross_entropy(logits.float(), y, reduction="sum"))
        top3 += int((logits.topk(3, dim=1).indices == y[:, None]).any(dim=1).sum())
        n += len(y)
    return {"val_loss": loss_sum / n, "val_top3": top3 / n}


@training_function(
    name="own_cnn",
    metrics=("val_loss", "val_top3", "train_loss", "n_params"),
    maximize=("val_top3",),
    params=Params,
)
def train(ctx: TrialContext) -> dict[str, float]:
    p = Params(**ctx.params)
    torch.manual_seed(ctx.seed)
    x_train, y_train = make_images(p.n_train, seed=1)
    x_val, y_val = make_images(p.n_val, seed=2)
    loader = DataLoader(
        Images(x_train, y_train, augment=True),
        batch_size=p.batch_size,
        shuffle=True,
        num_workers=p.num_workers,
        pin_memory=ctx.device.type == "cuda",
        generator=torch.Generator().manual_seed(ctx.seed),
    )
    val_loader = DataLoader(Images(x_val, y_val, augment=False), batch_size=256)

    model = build(p.width, p.dropout).to(ctx.device)
    reg = ctx.regularizer(model)  # this trial's λ₁, λ₂ and method; BatchNorm and biases excluded
    optimizer = torch.optim.AdamW(reg.param_groups(), lr=ctx.lr)
    reg.attach(optimizer)
    steps, warmup = ctx.epochs * len(loader), p.warmup_epochs * len(loader)

    def factor(step: int) -> float:  # linear warmup, then cosine to 0
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    metrics: dict[str, float] = {}
    for epoch in range(ctx.epochs):
        model.train()
        total, batches = 0.0, 0
        for x, y in loader:
            x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(ctx.device.type, dtype=torch.bfloat16):
                loss = nn.functional.cross_entropy(model(x), y)
            reg.penalize(loss).backward()
            reg.clip_grad_norm_(p.clip)  # clips the data gradient, never the penalty's
            optimizer.step()
            schedule.step()
            total, batches = total + float(loss.detach()), batches + 1
        metrics = {**evaluate(model, val_loader, ctx.device), "train_loss": total / batches}
        ctx.report(epoch, metrics)  # the pruner's value; raises when the trial must end
    return {**metrics, "n_params": float(sum(w.numel() for w in model.parameters()))}
