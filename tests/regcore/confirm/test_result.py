"""What a confirmation says: each candidate against its λ = 0 twin, seed by seed (paired,
Holm-corrected), and a recommendation that breaks ties toward the simpler setting."""

from __future__ import annotations

import optuna
import pytest

from regcore.confirm import confirmation, queue_confirmation
from tests.regcore.confirm.searches import make_spec, search, table, train_confirmation

SPREAD = {8: 0.50, 9: 0.62, 10: 0.41, 11: 0.55}  # seed-to-seed spread, sd ≈ 0.09


def confirmed(values: object, **confirm: object) -> optuna.Study:
    study = search(optuna.create_study())
    queue_confirmation(study, make_spec(**confirm))
    train_confirmation(study, values)  # type: ignore[arg-type]
    return study


def test_a_small_gain_on_every_seed_is_found_despite_a_large_spread() -> None:
    # Seed-to-seed sd ≈ 0.09 and a gain of 0.03 on every seed: Welch would say "no difference".
    def value(key: object, seed: int) -> float:
        gain = {1: 0.03, 3: 0.0}.get(key, 0.0)  # type: ignore[call-overload]
        return SPREAD[seed] - gain

    result = confirmation(confirmed(value, seeds=4, top=2))
    assert result is not None
    best = result.settings[0]
    assert (best.label, best.wins, len(best.gains)) == ("best", 4, 4)
    assert best.p_vs_baseline is not None
    assert best.p_vs_baseline < 0.001
    assert result.recommended is best
    assert result.beats_baseline
    assert result.verdict.startswith(
        "proximal with λ₁ = 0.001, λ₂ = 0.0001 with dropout=0.1 beats its λ = 0 twin on 4 of 4"
    )
    assert "one-sided paired t-test, Holm-adjusted over 2 settings" in result.verdict


def test_noise_says_regularization_made_no_measurable_difference() -> None:
    values = {
        1: [0.33, 0.36, 0.30],
        3: [0.34, 0.31, 0.37],
        "baseline": [0.35, 0.31, 0.36],
        "baseline-2": [0.36, 0.30, 0.35],
    }
    result = confirmation(confirmed(table(values)))
    assert result is not None
    assert result.recommended is not None
    assert result.recommended.is_baseline
    assert not result.beats_baseline
    assert result.verdict.startswith("regularization made no measurable difference")
    assert "train without it" in result.verdict
    assert result.recommended.paste()[0] == "# no Regularizer: λ₁ = λ₂ = 0"


def test_a_gain_that_is_the_other_values_not_lambdas_recommends_the_twin() -> None:
    # #2 (dropout 0.2) is best, but its twin (dropout 0.2, λ = 0) is as good: the gain is the
    # dropout's. Train with dropout 0.2 and no regularizer.
    values = {
        1: [0.40, 0.41, 0.39],
        3: [0.300, 0.310, 0.290],
        "baseline": [0.50, 0.51, 0.49],
        "baseline-2": [0.301, 0.309, 0.292],
    }
    result = confirmation(confirmed(table(values)))
    assert result is not None
    chosen = result.recommended
    assert chosen is not None
    assert (chosen.label, chosen.params) == ("baseline (λ=0) of #2", {"dropout": 0.2})
    assert not result.beats_baseline
    assert chosen.paste() == ["# no Regularizer: λ₁ = λ₂ = 0", "# with dropout=0.2"]


def test_a_tie_goes_to_the_simpler_setting() -> None:
    # The best (proximal) and #2 (penalty) cannot be told apart and both beat their twins;
    # both have two non-zero λ, so the class order decides: penalty before proximal.
    values = {
        1: [0.300, 0.305, 0.295],
        3: [0.302, 0.303, 0.296],
        "baseline": [0.5, 0.51, 0.49],
        "baseline-2": [0.5, 0.52, 0.48],
    }
    result = confirmation(confirmed(table(values)))
    assert result is not None
    assert result.recommended is not None
    assert (result.recommended.label, result.recommended.method_class) == ("#2", "penalty")
    assert result.beats_baseline


def test_holm_keeps_two_borderline_gains_from_being_called_real() -> None:
    # Each candidate's raw paired p is about 0.04; tested together, neither survives Holm.
    gains = {8: 0.01, 9: 0.03, 10: 0.02}
    values = {
        1: [0.5 - gains[s] for s in (8, 9, 10)],
        3: [0.5 - gains[s] for s in (8, 9, 10)],
        "baseline": [0.5, 0.5, 0.5],
        "baseline-2": [0.5, 0.5, 0.5],
    }
    result = confirmation(confirmed(table(values)))
    assert result is not None
    best = result.settings[0]
    assert best.p_raw is not None
    assert best.p_raw < 0.05
    assert best.p_vs_baseline == pytest.approx(min(1.0, 2 * best.p_raw))
    assert best.p_vs_baseline is not None
    assert best.p_vs_baseline > 0.05
    assert not result.beats_baseline


def test_a_confirmation_still_running_says_so() -> None:
    study = search(optuna.create_study())
    queue_confirmation(study, make_spec())
    result = confirmation(study)
    assert result is not None
    assert result.pending == 12
    assert result.verdict == (
        "not enough confirmation trials finished to compare (12 confirmation trials still to run)"
    )


def test_a_search_without_a_confirmation_has_no_result() -> None:
    assert confirmation(search(optuna.create_study())) is None
