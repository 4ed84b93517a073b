"""Regularize in a real Hugging Face Trainer trains what the plain loop with a Regularizer
trains (float64, to 1e-10), for every method, with HF's clip (on the data gradient only for
the step-time methods; with the penalty's for loss and hook), gradient accumulation (with and
without num_items_in_batch), and the default exclusions of HF's weight decay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

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

transformers = pytest.importorskip("transformers")
from regcore.integrations.transformers import Regularize, hf_decay_exclude  # noqa: E402


class Net(nn.Module):
    """The plain loop's MLP behind the interface HF's Trainer calls: a dict with the loss."""

    def __init__(self) -> None:
        super().__init__()
        self.net = model()

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, Any]:
        out = self.net(x)
        loss = None if labels is None else nn.functional.mse_loss(out, labels)
        return {"loss": loss, "logits": out}


class CountingNet(Net):
    """A model that normalizes its loss by the whole accumulation window's item count, as
    HF's language models do when the Trainer passes num_items_in_batch."""

    accepts_loss_kwargs = True  # what HF's own models declare

    def forward(  # type: ignore[override]
        self,
        x: torch.Tensor,
        labels: torch.Tensor | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> dict[str, Any]:
        out = self.net(x)
        if labels is None:
            return {"loss": None, "logits": out}
        assert num_items_in_batch is not None  # the Trainer counted the labels
        loss = ((out - labels) ** 2).sum() / num_items_in_batch
        return {"loss": loss, "logits": out}


def rows() -> list[dict[str, torch.Tensor]]:
    x, y = data()
    return [{"x": x[i], "labels": y[i]} for i in range(len(x))]


def train(
    tmp_path: Path,
    net: Net,
    callbacks: list[Any],
    *,
    optimizer: str = "adam",
    steps: int = 12,
    **options: Any,
) -> nn.Module:
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=BATCH,
        max_steps=steps,
        lr_scheduler_type="constant",
        max_grad_norm=options.pop("max_grad_norm", 0.0),
        train_sampling_strategy="sequential",
        weight_decay=0.0,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        **options,
    )
    trainer = transformers.Trainer(
        model=net,
        args=args,
        train_dataset=rows(),
        optimizers=(OPTIMIZERS[optimizer](groups(net.net)), None),
        callbacks=callbacks,
    )
    trainer.train()
    return net.net


def regularize(method: str) -> Regularize:
    return Regularize(l1=l1_for(method), l2=L2, method=method)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_as_the_plain_loop(tmp_path: Path, method: str, optimizer: str) -> None:
    trained = train(tmp_path, Net(), [regularize(method)], optimizer=optimizer)
    assert max_abs_diff(trained, plain_loop(method, optimizer, steps=12)) <= 1e-10


@pytest.mark.parametrize("method", METHODS)
def test_how_hfs_clip_and_the_penalty_combine(tmp_path: Path, method: str) -> None:
    trained = train(tmp_path, Net(), [regularize(method)], optimizer="sgd", max_grad_norm=0.05)
    data_only = plain_loop(method, "sgd", steps=12, clip=0.05)
    everything = plain_loop(method, "sgd", steps=12, clip=0.05, penalty_clipped=True)
    if method in ("loss", "hook"):  # in .grad when HF clips: clipped with the data gradient
        assert max_abs_diff(trained, everything) <= 1e-10
        assert max_abs_diff(trained, data_only) > 1e-6
    else:  # in the step, after HF's clip: the plain loop's reg.clip_grad_norm_
        assert max_abs_diff(trained, data_only) <= 1e-10


@pytest.mark.parametrize("net", [Net, CountingNet])
@pytest.mark.parametrize("method", METHODS)
def test_gradient_accumulation_applies_lambda_once_per_step(
    tmp_path: Path, method: str, net: type[Net]
) -> None:
    trained = train(tmp_path, net(), [regularize(method)], steps=6, gradient_accumulation_steps=2)
    assert max_abs_diff(trained, plain_loop(method, "adam", steps=6, accumulate=2)) <= 1e-10


def test_without_the_callback_the_model_trains_unregularized(tmp_path: Path) -> None:
    trained = train(tmp_path, Net(), [])
    assert max_abs_diff(trained, plain_loop("fused", "adam", steps=12)) > 1e-6


def test_the_default_exclusions_are_hfs_weight_decay_ones() -> None:
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    bert = transformers.BertForSequenceClassification(config)
    excluded = hf_decay_exclude(bert)
    left_out = {n for n, p in bert.named_parameters() if excluded(n, p)}
    assert left_out
    assert all("bias" in n or "LayerNorm" in n for n in left_out)
    assert "bert.embeddings.word_embeddings.weight" not in left_out  # embeddings decay in HF


def test_a_loss_the_trainer_computes_itself_is_refused(tmp_path: Path) -> None:
    def own_loss(outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> Any:
        return nn.functional.mse_loss(outputs["logits"], labels)

    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=BATCH,
        max_steps=2,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        weight_decay=0.0,
    )
    net = Net()
    trainer = transformers.Trainer(
        model=net,
        args=args,
        train_dataset=rows(),
        compute_loss_func=own_loss,
        optimizers=(OPTIMIZERS["adam"](groups(net.net)), None),
        callbacks=[regularize("loss")],
    )
    with pytest.raises(RuntimeError, match="backpropagated a loss of its own"):
        trainer.train()
