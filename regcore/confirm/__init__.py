"""Confirmation: the best settings and their λ = 0 twins, trained again with new seeds.

One seed per setting cannot tell a gain from noise (tried as a new user would: the best
val_loss 1.333 against a baseline of 1.343, and nothing said whether that is real). With
``confirm: {seeds: S, top: K}`` (on by default; ``confirm: false`` skips it) a sweep, once
its search is over, trains its ``K`` best distinct settings and each one's λ = 0 twin ``S``
times with seeds it never searched with (:mod:`._plan`), in a study of its own; the search's
own trial of a setting is not reused (it was picked for being lucky: the winner's curse).
:func:`confirmation` reads the result (:mod:`._result`): paired tests on per-seed
differences, Holm-corrected (:mod:`._stats`), and the recommendation.
"""

from regcore.confirm._plan import (
    CONFIRMS,
    QUEUED,
    candidates,
    confirmation_study,
    next_confirmation,
    plan,
    queue_confirmation,
    seeds,
    twin_key,
)
from regcore.confirm._result import Confirmation, Setting, confirmation, confirmation_trials
from regcore.confirm._stats import ALPHA, holm, paired_differences, paired_p

__all__ = [
    "ALPHA",
    "CONFIRMS",
    "QUEUED",
    "Confirmation",
    "Setting",
    "candidates",
    "confirmation",
    "confirmation_study",
    "confirmation_trials",
    "holm",
    "next_confirmation",
    "paired_differences",
    "paired_p",
    "plan",
    "queue_confirmation",
    "seeds",
    "twin_key",
]
