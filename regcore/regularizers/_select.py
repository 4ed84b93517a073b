"""Which parameters a regularizer acts on.

By default every trainable parameter with ``ndim >= 2`` (weight matrices and convolution
kernels); biases and normalization weights (1-D) are left alone, as timm's
``param_groups_weight_decay``, nanoGPT's ``configure_optimizers`` and the HF Trainer do.
``only`` narrows that to parameters whose names match a list of patterns (a backbone, a head).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable

import torch
from torch import nn

ExcludePredicate = Callable[[str, nn.Parameter], bool]
Exclude = ExcludePredicate | Iterable[str] | None
Only = Iterable[str] | None
# Every name a parameter is reachable by (tied parameters have several), by id(param).
_Aliases = dict[int, list[str]]

# How many parameter names an error message lists before it says "..."
_NAMES_SHOWN = 6


def default_exclude(name: str, param: nn.Parameter) -> bool:
    """Exclude biases and normalization weights: every parameter with fewer than 2 dims."""
    del name
    return param.ndim < 2


def _as_predicate(exclude: Exclude) -> ExcludePredicate:
    if exclude is None:
        return default_exclude
    if callable(exclude):
        return exclude
    if isinstance(exclude, str):
        raise TypeError(
            f"exclude must be a list of name patterns or a predicate, but got the string "
            f"{exclude!r}; write exclude=[{exclude!r}]"
        )
    patterns = tuple(exclude)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"exclude patterns must be strings, but got {pattern!r}")

    def by_name(name: str, param: nn.Parameter) -> bool:
        del param
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)

    return by_name


def _only_patterns(only: Only) -> tuple[str, ...] | None:
    if only is None:
        return None
    if isinstance(only, str):
        raise TypeError(
            f"only must be a list of name patterns, but got the string {only!r}; "
            f"write only=[{only!r}]"
        )
    if callable(only) or not isinstance(only, Iterable):
        raise TypeError(
            f"only must be a list of fnmatch name patterns such as ['backbone.*'], but got "
            f"{only!r}; to choose parameters by a predicate, pass exclude=predicate instead"
        )
    patterns = tuple(only)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(
                f"only patterns must be strings, but got {pattern!r} "
                f"({type(pattern).__name__}); write it as a name pattern such as 'backbone.*'"
            )
    if not patterns:
        raise ValueError(
            "only=[] would regularize nothing; pass only=None to choose by exclude alone, "
            "or l1=0 and l2=0 to train unregularized"
        )
    return patterns


def _some(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_NAMES_SHOWN])
    if len(names) > _NAMES_SHOWN:
        shown += f", ... ({len(names)} in all)"
    return shown


def _matches(
    patterns: tuple[str, ...], trainable: list[tuple[str, nn.Parameter]], aliases: _Aliases
) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Each pattern's trainable parameters; a tied parameter matches by any of its names."""
    return {
        pattern: [
            (name, param)
            for name, param in trainable
            if any(fnmatch.fnmatchcase(alias, pattern) for alias in aliases[id(param)])
        ]
        for pattern in patterns
    }


def _check_only(
    matches: dict[str, list[tuple[str, nn.Parameter]]],
    trainable: list[tuple[str, nn.Parameter]],
    frozen_names: list[str],
    excluded_ids: set[int],
    exclude: Exclude,
) -> None:
    """Refuse patterns that select nothing: a typo, or a pattern ``exclude`` cancels out."""
    unmatched = [pattern for pattern, params in matches.items() if not params]
    if unmatched:
        names = [name for name, _ in trainable]
        listed = (
            f"the model's trainable parameters are {_some(names)}"
            if names
            else "the model has no trainable parameters"
        )
        frozen = [
            pattern
            for pattern in unmatched
            if any(fnmatch.fnmatchcase(name, pattern) for name in frozen_names)
        ]
        frozen_note = (
            f" ({', '.join(repr(p) for p in frozen)} {'matches' if len(frozen) == 1 else 'match'} "
            f"only frozen parameters, "
            f"requires_grad=False, which are never regularized)"
            if frozen
            else ""
        )
        raise ValueError(
            f"only pattern(s) {', '.join(repr(p) for p in unmatched)} match no trainable "
            f"parameter{frozen_note}; {listed}; fix the pattern(s) (fnmatch over the full "
            f"dotted name, case-sensitive, e.g. 'backbone.*') or drop them"
        )

    cancelled = [
        pattern
        for pattern, params in matches.items()
        if all(id(param) in excluded_ids for _, param in params)
    ]
    if cancelled:
        removed = list(dict.fromkeys(name for p in cancelled for name, _ in matches[p]))
        fix = (
            "exclude=None applies the default rule, which leaves out every parameter with "
            "ndim < 2; pass exclude=[] to regularize them too"
            if exclude is None
            else "loosen exclude"
        )
        raise ValueError(
            f"only pattern(s) {', '.join(repr(p) for p in cancelled)} select only parameters "
            f"that exclude removes ({_some(removed)}), so they regularize nothing; {fix}, "
            f"or drop the pattern(s)"
        )


def select_parameters(
    model: nn.Module, exclude: Exclude = None, *, only: Only = None
) -> tuple[list[tuple[str, nn.Parameter]], list[tuple[str, nn.Parameter]]]:
    """Split the model's trainable parameters into (regularized, excluded), each ``(name, p)``.

    ``exclude`` is ``None`` (the default rule, :func:`default_exclude`), a list of
    :mod:`fnmatch` patterns over parameter names (``["*.bias", "embed.*"]``), which replaces the
    default rule, or a predicate ``(name, param) -> bool`` that returns True to exclude.

    ``only`` (a list of :mod:`fnmatch` patterns, ``["backbone.*"]``) narrows the candidates to
    the parameters whose names match one of them; ``exclude`` then removes from those as
    always. So with ``exclude=None`` the default rule still applies: ``only=["backbone.*"]``
    regularizes the backbone's weights, not its biases or norms (``exclude=[]`` takes them
    too). A tied parameter is matched by any of its names. Every pattern must select at least
    one trainable parameter that ``exclude`` keeps, else ``ValueError`` names the pattern.

    ``excluded`` is every trainable parameter not regularized (outside ``only`` or removed by
    ``exclude``). Frozen parameters (``requires_grad=False``) are in neither list. Tied
    parameters appear once, under their first name (the one ``exclude`` sees).
    """
    is_excluded = _as_predicate(exclude)
    patterns = _only_patterns(only)
    aliases: _Aliases = {}
    trainable: list[tuple[str, nn.Parameter]] = []
    frozen_names: list[str] = []
    for name, param in model.named_parameters(remove_duplicate=False):
        if not param.requires_grad:
            frozen_names.append(name)
            continue
        if id(param) not in aliases:
            aliases[id(param)] = []
            trainable.append((name, param))
        aliases[id(param)].append(name)

    excluded_ids = {id(param) for name, param in trainable if is_excluded(name, param)}
    if patterns is None:
        chosen = {id(param) for _, param in trainable}
    else:
        matches = _matches(patterns, trainable, aliases)
        _check_only(matches, trainable, frozen_names, excluded_ids, exclude)
        chosen = {id(param) for params in matches.values() for _, param in params}

    regularized: list[tuple[str, nn.Parameter]] = []
    excluded: list[tuple[str, nn.Parameter]] = []
    for name, param in trainable:
        keep = id(param) in chosen and id(param) not in excluded_ids
        (regularized if keep else excluded).append((name, param))
    return regularized, excluded


def regularized_tensors(
    model: nn.Module, exclude: Exclude = None, *, only: Only = None
) -> list[torch.Tensor]:
    """The tensors :func:`select_parameters` would regularize, detached (for metrics)."""
    regularized, _ = select_parameters(model, exclude, only=only)
    return [p.detach() for _, p in regularized]
