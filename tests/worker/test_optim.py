"""The built-in loop's optimizer: per-pattern learning rates, the spec's torch optimizer, and
the learning-rate schedules, read off a real optimizer's groups step by step."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import torch
from torch import nn

from regcore.regularizers import Regularizer
from regcore.spec import SchedulerSpec
from regcore.worker.optim import LrSchedule, make_optimizer, param_groups

LR = 0.1


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def names_of(model: nn.Module) -> dict[int, str]:
    return {id(p): name for name, p in model.named_parameters()}


def by_name(model: nn.Module, groups: Sequence[Mapping[str, Any]]) -> dict[str, tuple[Any, Any]]:
    """Each parameter's (lr, weight_decay), by its name."""
    names = names_of(model)
    return {
        names[id(p)]: (group["lr"], group["weight_decay"])
        for group in groups
        for p in group["params"]
    }


# ---- param_groups ----------------------------------------------------------------------------


def test_param_groups_without_lr_mult_are_the_regularizers_groups_at_the_base_lr() -> None:
    model = mlp()
    reg = Regularizer(model, l2=0.01, method="weight_decay")
    groups = param_groups(reg, model, lr=LR, lr_mult={})
    assert [len(g["params"]) for g in groups] == [len(g["params"]) for g in reg.param_groups()]
    assert by_name(model, groups) == {
        "0.weight": (LR, 0.02),
        "2.weight": (LR, 0.02),
        "0.bias": (LR, 0.0),
        "2.bias": (LR, 0.0),
    }


def test_param_groups_split_by_the_first_matching_pattern_and_multiply_the_lr() -> None:
    model = mlp()
    reg = Regularizer(model, l2=0.01, method="weight_decay")
    # 0.weight matches all three patterns: the first one decides.
    lr_mult = {"0.weight": 0.1, "0.*": 0.5, "*.weight": 3.0}
    groups = param_groups(reg, model, lr=LR, lr_mult=lr_mult)
    lrs = {name: lr for name, (lr, _) in by_name(model, groups).items()}
    assert lrs == pytest.approx(
        {"0.weight": 0.1 * LR, "0.bias": 0.5 * LR, "2.weight": 3.0 * LR, "2.bias": LR}
    )
    # Every group has one lr: the regularized and excluded groups are split, never mixed.
    assert len(groups) == 4


def test_param_groups_keep_the_weight_decay_of_each_regularizer_group() -> None:
    model = mlp()
    reg = Regularizer(model, l2=0.01, method="weight_decay")
    groups = param_groups(reg, model, lr=LR, lr_mult={"0.*": 0.5})
    decay = {name: wd for name, (_, wd) in by_name(model, groups).items()}
    assert decay == {"0.weight": 0.02, "2.weight": 0.02, "0.bias": 0.0, "2.bias": 0.0}
    # The Regularizer accepts the split groups as its own (it refuses mixed ones).
    optimizer = make_optimizer(groups, name="sgd", lr=LR, options={})
    reg.attach(optimizer)
    reg.detach()


def test_param_groups_refuse_a_pattern_that_matches_nothing_naming_the_parameters() -> None:
    model = mlp()
    reg = Regularizer(model, l2=0.01, method="fused")
    with pytest.raises(ValueError, match="lr_mult patterns") as info:
        param_groups(reg, model, lr=LR, lr_mult={"0.*": 0.5, "backbone.*": 0.1})
    message = str(info.value)
    assert "'backbone.*'" in message
    assert "'0.*'" not in message  # it matched
    assert "match no trainable parameter" in message
    for name in ("0.weight", "0.bias", "2.weight", "2.bias"):
        assert name in message


# ---- make_optimizer -------------------------------------------------------------------------


def test_make_optimizer_passes_momentum_and_nesterov_to_sgd() -> None:
    model = mlp()
    groups = param_groups(Regularizer(model), model, lr=LR, lr_mult={})
    options = {"momentum": 0.9, "nesterov": True, "betas": None}
    optimizer = make_optimizer(groups, name="sgd", lr=LR, options=options)
    assert type(optimizer) is torch.optim.SGD
    for group in optimizer.param_groups:
        assert (group["momentum"], group["nesterov"], group["lr"]) == (0.9, True, LR)


@pytest.mark.parametrize(
    ("name", "cls"), [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)]
)
def test_make_optimizer_passes_betas_to_adam_and_adamw(
    name: str, cls: type[torch.optim.Optimizer]
) -> None:
    model = mlp()
    groups = param_groups(Regularizer(model, method="decoupled"), model, lr=LR, lr_mult={})
    optimizer = make_optimizer(
        groups, name=name, lr=LR, options={"betas": (0.8, 0.99), "momentum": None}
    )
    assert type(optimizer) is cls
    assert all(group["betas"] == (0.8, 0.99) for group in optimizer.param_groups)
    # The Regularizer's groups set weight_decay: AdamW's default 0.01 never applies.
    assert all(group["weight_decay"] == 0.0 for group in optimizer.param_groups)


def test_make_optimizer_leaves_unset_options_at_torchs_defaults() -> None:
    model = mlp()
    groups = param_groups(Regularizer(model), model, lr=LR, lr_mult={})
    unset = {"momentum": None, "nesterov": None, "betas": None}
    sgd = make_optimizer(groups, name="sgd", lr=LR, options=unset)
    assert (sgd.defaults["momentum"], sgd.defaults["nesterov"]) == (0, False)
    adam = make_optimizer(groups, name="adam", lr=LR, options=unset)
    assert adam.defaults["betas"] == (0.9, 0.999)
    rmsprop = make_optimizer(groups, name="rmsprop", lr=LR, options={"momentum": 0.5})
    assert rmsprop.defaults["momentum"] == 0.5


def test_make_optimizer_keeps_each_groups_own_lr() -> None:
    model = mlp()
    groups = param_groups(Regularizer(model), model, lr=LR, lr_mult={"2.*": 0.25})
    optimizer = make_optimizer(groups, name="sgd", lr=LR, options={})
    assert sorted(g["lr"] for g in optimizer.param_groups) == pytest.approx(
        [0.25 * LR] * 2 + [LR] * 2
    )


def test_make_optimizer_refuses_an_unknown_name_listing_the_known_ones() -> None:
    model = mlp()
    groups = param_groups(Regularizer(model), model, lr=LR, lr_mult={})
    with pytest.raises(ValueError, match=r"unknown optimizer 'lamb'; choose sgd, adam, adamw or"):
        make_optimizer(groups, name="lamb", lr=LR, options={})


# ---- LrSchedule ------------------------------------------------------------------------------


def drive(
    spec: SchedulerSpec,
    *,
    epochs: int,
    steps_per_epoch: int,
    lr_mult: Mapping[str, float] | None = None,
    name: str = "sgd",
    monitored: Sequence[float] | None = None,
    maximize: bool = False,
) -> list[list[float]]:
    """Train a small model with ``spec`` and return, for each optimizer step, the lr of every
    group that step used (read just before ``step()``), then the groups' lrs after the run.
    ``monitored``: the metric given to ``after_epoch`` at each epoch's end."""
    model = mlp()
    reg = Regularizer(model, l2=0.01, method="decoupled")
    groups = param_groups(reg, model, lr=LR, lr_mult=lr_mult or {})
    optimizer = make_optimizer(groups, name=name, lr=LR, options={})
    reg.attach(optimizer)
    schedule = LrSchedule(
        optimizer, spec, epochs=epochs, steps_per_epoch=steps_per_epoch, maximize=maximize
    )
    x, y = torch.randn(8, 3), torch.randn(8, 2)
    seen: list[list[float]] = []
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            optimizer.zero_grad()
            reg.penalize(nn.functional.mse_loss(model(x), y)).backward()  # type: ignore[no-untyped-call]
            seen.append([float(g["lr"]) for g in optimizer.param_groups])
            optimizer.step()
            schedule.after_step()
        if monitored is not None:
            schedule.after_epoch(monitored[epoch])
    seen.append([float(g["lr"]) for g in optimizer.param_groups])
    return seen


def first_group(lrs: list[list[float]]) -> list[float]:
    return [step[0] for step in lrs]


def test_no_schedule_keeps_the_lr() -> None:
    lrs = first_group(drive(SchedulerSpec(), epochs=3, steps_per_epoch=4))
    assert lrs == [LR] * 13


def test_warmup_ramps_linearly_to_the_lr_over_warmup_epochs_times_steps_per_epoch() -> None:
    spec = SchedulerSpec(name="none", warmup_epochs=1.5)
    lrs = first_group(drive(spec, epochs=4, steps_per_epoch=4))
    warm = 6  # 1.5 epochs of 4 steps
    assert lrs[:warm] == pytest.approx([LR * (t + 1) / warm for t in range(warm)])
    assert lrs[warm:] == pytest.approx([LR] * (len(lrs) - warm))
    steps = [b - a for a, b in itertools.pairwise(lrs[:warm])]
    assert steps == pytest.approx([LR / warm] * (warm - 1))  # linear


def test_cosine_schedule_ends_at_min_lr_ratio_of_the_lr() -> None:
    spec = SchedulerSpec(name="cosine", min_lr_ratio=0.1)
    lrs = first_group(drive(spec, epochs=3, steps_per_epoch=5))
    assert lrs[0] == pytest.approx(LR)
    assert lrs[-2] == pytest.approx(0.1 * LR)  # the last step
    assert lrs[-1] == pytest.approx(0.1 * LR)  # and there it stays
    assert min(lrs) == pytest.approx(0.1 * LR)


def test_cosine_schedule_is_monotone_after_the_warmup() -> None:
    spec = SchedulerSpec(name="cosine", warmup_epochs=1, min_lr_ratio=0.05)
    lrs = first_group(drive(spec, epochs=4, steps_per_epoch=5))
    assert lrs[:5] == pytest.approx([LR * (t + 1) / 5 for t in range(5)])
    after = lrs[4:]  # from the warmup's end, at the full lr
    assert after[0] == pytest.approx(LR)
    assert all(b <= a for a, b in itertools.pairwise(after))
    assert after[-2] == pytest.approx(0.05 * LR)


def test_cosine_schedule_follows_torchs_cosine_annealing() -> None:
    epochs, per_epoch, ratio = 3, 4, 0.2
    lrs = first_group(
        drive(SchedulerSpec(name="cosine", min_lr_ratio=ratio), epochs=3, steps_per_epoch=4)
    )
    total = epochs * per_epoch
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=LR)
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=total - 1, eta_min=ratio * LR
    )
    expected = []
    for _ in range(total):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        reference.step()
    assert lrs[:total] == pytest.approx(expected, rel=1e-9)


def test_step_schedule_multiplies_by_gamma_every_step_epochs() -> None:
    spec = SchedulerSpec(name="step", step_epochs=2, gamma=0.5, warmup_epochs=1)
    per_epoch = 3
    lrs = first_group(drive(spec, epochs=7, steps_per_epoch=per_epoch))
    by_epoch = [lrs[e * per_epoch : (e + 1) * per_epoch] for e in range(7)]
    assert by_epoch[0] == pytest.approx([LR / 3, 2 * LR / 3, LR])  # the warmup
    # After the warmup: 2 epochs at lr, 2 at lr/2, 2 at lr/4.
    expected = [LR, LR, LR / 2, LR / 2, LR / 4, LR / 4]
    for epoch, lr in enumerate(expected, start=1):
        assert by_epoch[epoch] == pytest.approx([lr] * per_epoch)


def test_step_schedule_takes_torchs_gamma_when_unset() -> None:
    spec = SchedulerSpec(name="step", step_epochs=1)
    lrs = first_group(drive(spec, epochs=2, steps_per_epoch=1))
    assert lrs == pytest.approx([LR, 0.1 * LR, 0.01 * LR])


@pytest.mark.parametrize("maximize", [False, True])
def test_plateau_multiplies_by_gamma_after_patience_epochs_without_improvement(
    maximize: bool,
) -> None:
    # Minimized: better, then 3 epochs no better, better, 3 no better, ...
    losses = [1.0, 0.5, 0.6, 0.5, 0.7, 0.4, 0.9, 0.9, 0.9, 0.9]
    monitored = [-v for v in losses] if maximize else losses
    spec = SchedulerSpec(name="plateau", patience=2, gamma=0.5)
    lrs = first_group(
        drive(spec, epochs=10, steps_per_epoch=1, monitored=monitored, maximize=maximize)
    )
    # The lr each epoch trained with: halved after the 3rd epoch in a row without a better
    # value (patience 2 are tolerated), counting again from there.
    assert lrs == pytest.approx([LR] * 5 + [LR / 2] * 4 + [LR / 4] * 2)

    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=LR)
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max" if maximize else "min", factor=0.5, patience=2, threshold=0.0
    )
    expected = [LR]
    for value in monitored:
        reference.step(value)
        expected.append(optimizer.param_groups[0]["lr"])
    assert lrs == pytest.approx(expected)


def test_plateau_takes_torchs_patience_and_gamma_when_unset() -> None:
    spec = SchedulerSpec(name="plateau")
    lrs = first_group(drive(spec, epochs=13, steps_per_epoch=1, monitored=[1.0] * 13))
    # Patience 10: the 11th epoch without a better value (the 12th epoch) cuts it by 10.
    assert lrs == pytest.approx([LR] * 12 + [0.1 * LR] * 2)


def test_onecycle_peaks_at_each_groups_lr() -> None:
    lr_mult = {"0.*": 0.5, "2.weight": 2.0}
    model = mlp()
    group_lrs = [g["lr"] for g in param_groups(Regularizer(model), model, lr=LR, lr_mult=lr_mult)]
    assert sorted(set(group_lrs)) == pytest.approx([0.5 * LR, LR, 2.0 * LR])
    spec = SchedulerSpec(name="onecycle", warmup_epochs=1)
    per_epoch = 5
    lrs = drive(spec, epochs=4, steps_per_epoch=per_epoch, lr_mult=lr_mult)
    peaks = [max(step[g] for step in lrs) for g in range(len(group_lrs))]
    assert peaks == pytest.approx(group_lrs)
    # The rise takes warmup_epochs: the peak is the last warmup step, then it anneals.
    first = first_group(lrs)
    peak_step = max(range(len(first)), key=lambda t: first[t])
    assert peak_step == per_epoch - 1
    assert all(a < b for a, b in itertools.pairwise(first[: peak_step + 1]))
    after = first[peak_step:-1]
    assert all(b < a for a, b in itertools.pairwise(after))
    assert first[-2] < first[0]  # torch's OneCycleLR ends far below where it starts


def test_onecycle_rises_over_30_percent_of_the_run_without_a_warmup() -> None:
    lrs = first_group(drive(SchedulerSpec(name="onecycle"), epochs=5, steps_per_epoch=4))
    peak_step = max(range(len(lrs)), key=lambda t: lrs[t])
    assert peak_step == 5  # 30 % of 20 steps, 0-based
    assert lrs[peak_step] == pytest.approx(LR)


SCHEDULES = [
    SchedulerSpec(),
    SchedulerSpec(warmup_epochs=1),
    SchedulerSpec(name="cosine", warmup_epochs=0.5, min_lr_ratio=0.1),
    SchedulerSpec(name="cosine"),
    SchedulerSpec(name="step", step_epochs=1, gamma=0.3, warmup_epochs=1),
    SchedulerSpec(name="onecycle"),
    SchedulerSpec(name="onecycle", warmup_epochs=2),
    SchedulerSpec(name="plateau", patience=0, gamma=0.5, warmup_epochs=1),
]


@pytest.mark.parametrize("spec", SCHEDULES, ids=lambda s: f"{s.name}-{s.warmup_epochs:g}")
@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_every_schedule_keeps_each_groups_lr_mult_ratio(spec: SchedulerSpec, name: str) -> None:
    lr_mult = {"0.weight": 0.1, "2.*": 3.0}
    model = mlp()
    groups = param_groups(Regularizer(model), model, lr=LR, lr_mult=lr_mult)
    ratios = [g["lr"] / LR for g in groups]
    lrs = drive(spec, epochs=4, steps_per_epoch=3, lr_mult=lr_mult, name=name, monitored=[1.0] * 4)
    reference = ratios.index(1.0)  # 0.bias: no pattern matches it
    for step, step_lrs in enumerate(lrs):
        base = step_lrs[reference]
        expected = [ratio * base for ratio in ratios]
        assert step_lrs == pytest.approx(expected, rel=1e-9, abs=1e-15), f"step {step}"
    if spec.name != "none" or spec.warmup_epochs:  # the lr moved: the check was no formality
        assert len({step[reference] for step in lrs}) > 2


def test_the_schedule_sets_the_first_steps_lr_before_it() -> None:
    """The optimizer holds the schedule's first lr from the start (before any step), so even
    the first step is scheduled."""
    model = mlp()
    groups = param_groups(Regularizer(model), model, lr=LR, lr_mult={})
    optimizer = make_optimizer(groups, name="sgd", lr=LR, options={})
    LrSchedule(optimizer, SchedulerSpec(warmup_epochs=1), epochs=2, steps_per_epoch=4)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([LR / 4] * 2)
