"""Which parameters are regularized: ``only`` narrows, ``exclude`` removes, frozen never count."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from regcore.regularizers import L1_METHODS, METHODS, Regularizer, select_parameters


class Net(nn.Module):
    """A backbone and a head, with biases, a norm, a frozen layer and a tied weight."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 8))
        self.head = nn.Linear(8, 4)
        self.out = nn.Linear(8, 8)
        self.out.weight = self.backbone[2].weight  # type: ignore[assignment]  # tied
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(x)
        return self.head(hidden).sum() + self.out(hidden).sum()


TRAINABLE = [
    "backbone.0.weight",
    "backbone.0.bias",
    "backbone.1.weight",
    "backbone.1.bias",
    "backbone.2.weight",
    "backbone.2.bias",
    "head.weight",
    "head.bias",
    "out.bias",
]


def names(pairs: list[tuple[str, nn.Parameter]]) -> list[str]:
    return [name for name, _ in pairs]


def split(**kwargs: object) -> tuple[list[str], list[str]]:
    regularized, excluded = select_parameters(Net(), **kwargs)  # type: ignore[arg-type]
    return names(regularized), names(excluded)


def test_only_keeps_the_default_rule_so_it_regularizes_the_matching_weights() -> None:
    regularized, excluded = split(only=["backbone.*"])
    assert regularized == ["backbone.0.weight", "backbone.2.weight"]
    # Excluded = trainable but not regularized: the backbone's 1-D parameters and the rest.
    assert sorted(regularized + excluded) == sorted(TRAINABLE)


def test_only_with_exclude_patterns_replaces_the_default_rule() -> None:
    assert split(only=["backbone.*"], exclude=[])[0] == [
        "backbone.0.weight",
        "backbone.0.bias",
        "backbone.1.weight",
        "backbone.1.bias",
        "backbone.2.weight",
        "backbone.2.bias",
    ]
    assert split(only=["backbone.*", "head.*"], exclude=["*.bias", "backbone.1.*"])[0] == [
        "backbone.0.weight",
        "backbone.2.weight",
        "head.weight",
    ]


def test_only_with_an_exclude_predicate() -> None:
    regularized, _ = split(only=["backbone.*"], exclude=lambda name, p: name.endswith(".bias"))
    assert regularized == ["backbone.0.weight", "backbone.1.weight", "backbone.2.weight"]


def test_only_takes_any_of_several_patterns() -> None:
    assert split(only=["head.*", "backbone.0.*"])[0] == ["backbone.0.weight", "head.weight"]


def test_only_matches_a_tied_parameter_by_any_of_its_names() -> None:
    # out.weight is backbone.2.weight: listed once, under its first name.
    assert split(only=["out.weight"])[0] == ["backbone.2.weight"]


def test_only_never_selects_frozen_parameters() -> None:
    regularized, excluded = split(only=["*"])
    assert regularized == ["backbone.0.weight", "backbone.2.weight", "head.weight"]
    assert not any(name.startswith("frozen.") for name in regularized + excluded)


def test_without_only_the_selection_is_unchanged() -> None:
    assert split()[0] == ["backbone.0.weight", "backbone.2.weight", "head.weight"]
    assert split(only=None, exclude=["head.*"])[0] == [
        "backbone.0.weight",
        "backbone.0.bias",
        "backbone.1.weight",
        "backbone.1.bias",
        "backbone.2.weight",
        "backbone.2.bias",
        "out.bias",
    ]


def test_regularizer_keeps_only_and_puts_the_rest_in_the_excluded_group() -> None:
    net = Net()
    reg = Regularizer(net, l2=1e-3, only=["head.*"])
    assert reg.only == ["head.*"]
    assert [name for name, _ in reg.named_parameters] == ["head.weight"]
    groups = reg.param_groups()
    assert [len(g["params"]) for g in groups] == [1, len(TRAINABLE) - 1]
    torch.testing.assert_close(reg.penalty(), 1e-3 * net.head.weight.square().sum())


def test_only_given_as_a_generator_is_kept_as_a_list() -> None:
    reg = Regularizer(Net(), l2=1e-3, only=(p for p in ["head.*"]))
    assert reg.only == ["head.*"]
    assert [name for name, _ in reg.named_parameters] == ["head.weight"]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_regularizes_exactly_the_only_parameters(method: str) -> None:
    """With a zero data gradient one SGD step moves exactly the parameters ``only`` chose."""
    lr, l2 = 0.1, 0.05
    l1 = 0.02 if method in L1_METHODS else 0.0
    net = Net().double()
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    reg = Regularizer(net, l1=l1, l2=l2, method=method, only=["backbone.*"], exclude=["*.1.*"])
    opt = torch.optim.SGD(reg.param_groups(), lr=lr)
    reg.attach(opt)
    reg.penalize(net(torch.randn(2, 4, dtype=torch.float64)) * 0.0).backward()
    opt.step()
    moved = {name for name, p in net.named_parameters() if not torch.equal(p, before[name])}
    chosen = {"backbone.0.weight", "backbone.0.bias", "backbone.2.weight", "backbone.2.bias"}
    assert {name for name, _ in reg.named_parameters} == chosen
    assert moved == chosen


@pytest.mark.parametrize(
    ("only", "match"),
    [
        (
            "backbone.*",
            r"only must be a list of name patterns, but got the string 'backbone\.\*'; "
            r"write only=\['backbone\.\*'\]",
        ),
        (
            ["backbone.*", 3],
            r"only patterns must be strings, but got 3 \(int\); write it as a name",
        ),
        (7, r"only must be a list of fnmatch name patterns such as \['backbone\.\*'\], but got 7"),
        (lambda name, p: True, r"to choose parameters by a predicate, pass exclude=predicate"),
    ],
)
def test_only_of_the_wrong_type_names_the_fix(only: object, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        Regularizer(Net(), l2=1e-3, only=only)  # type: ignore[arg-type]


def test_empty_only_is_refused() -> None:
    with pytest.raises(ValueError, match=r"only=\[\] would regularize nothing; pass only=None"):
        Regularizer(Net(), l2=1e-3, only=[])


def test_only_patterns_that_match_nothing_are_named_with_the_parameter_names() -> None:
    with pytest.raises(
        ValueError, match=r"^only pattern\(s\) 'encoder\.\*', 'Head\.\*' match no trainable"
    ) as error:
        Regularizer(Net(), l2=1e-3, only=["backbone.*", "encoder.*", "Head.*"])
    message = str(error.value)
    assert "'backbone.0.weight', 'backbone.0.bias'" in message
    assert f"... ({len(TRAINABLE)} in all)" in message
    assert "fix the pattern(s)" in message


def test_only_pattern_matching_only_frozen_parameters_says_so() -> None:
    with pytest.raises(ValueError, match=r"'frozen\.\*' matches only frozen parameters"):
        Regularizer(Net(), l2=1e-3, only=["frozen.*"])


def test_only_pattern_that_exclude_cancels_out_is_refused() -> None:
    with pytest.raises(
        ValueError,
        match=r"only pattern\(s\) '\*\.bias' select only parameters that exclude removes "
        r"\('backbone\.0\.bias'.*default rule.*pass exclude=\[\]",
    ):
        Regularizer(Net(), l2=1e-3, only=["*.bias"])
    with pytest.raises(ValueError, match=r"'head\.\*' select only.*loosen exclude"):
        Regularizer(Net(), l2=1e-3, only=["backbone.*", "head.*"], exclude=["head.*"])
