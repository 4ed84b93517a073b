"""Fine-tuning a small BERT with Hugging Face's Trainer, swept by regsweep as a training
function. The model is built from a config (nothing reaches a model hub) and the task is
generated: does the sequence start with a token from the lower half of the vocabulary? Run it:

    REGSWEEP_PLUGINS=tiny_bert PYTHONPATH=examples/transformers \\
        regsweep run examples/transformers/sweep.yaml
"""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    EvalPrediction,
    Trainer,
    TrainingArguments,
)

from regcore.integrations.transformers import Regularize, TrialCallback
from regcore.workloads import TrialContext, training_function

VOCAB, LENGTH = 64, 16


def make_rows(n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """Random token sequences, labelled 1 where the first token is below ``VOCAB // 2``."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (n, LENGTH), generator=generator)
    labels = (ids[:, 0] < VOCAB // 2).long()
    mask = torch.ones_like(ids)
    return [{"input_ids": ids[i], "attention_mask": mask[i], "labels": labels[i]} for i in range(n)]


def accuracy(prediction: EvalPrediction) -> dict[str, float]:
    logits = np.asarray(prediction.predictions)
    return {"accuracy": float((logits.argmax(-1) == prediction.label_ids).mean())}


@training_function(
    name="tiny_bert", metrics=("val_loss", "val_accuracy"), maximize=("val_accuracy",)
)
def train(ctx: TrialContext) -> dict[str, float]:
    torch.manual_seed(ctx.seed)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=ctx.params.get("hidden", 32),
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=LENGTH,
    )
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="tiny_bert-"),
        num_train_epochs=ctx.epochs,
        learning_rate=ctx.lr,
        per_device_train_batch_size=32,
        eval_strategy="epoch",
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        seed=ctx.seed,
        use_cpu=ctx.device.type == "cpu",
        weight_decay=0.0,  # the Regularize callback regularizes
    )
    trainer = Trainer(
        model=BertForSequenceClassification(config),
        args=args,
        train_dataset=make_rows(ctx.params.get("n_train", 512), seed=ctx.seed),
        eval_dataset=make_rows(ctx.params.get("n_val", 256), seed=ctx.seed + 1),
        compute_metrics=accuracy,
        callbacks=[Regularize(l1=ctx.l1, l2=ctx.l2, method=ctx.method), TrialCallback(ctx)],
    )
    trainer.train()
    final: dict[str, Any] = trainer.evaluate()
    return {"val_loss": final["eval_loss"], "val_accuracy": final["eval_accuracy"]}
