"""Documents over the bounds are refused before anything walks them: a YAML alias bomb of a
few hundred bytes, an alias that contains itself, a list too long for any spec. The check
itself costs at most MAX_VALUES steps, however far a document would expand."""

from __future__ import annotations

import itertools
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regcore.cli import app
from regcore.documents import (
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_VALUES,
    DocumentTooLargeError,
    check_size,
    read_document,
)
from regcore.spec import SpecError, load_spec

SPEC = "name: s\nworkload: {name: diabetes_linear}\nsearch_space: {l1: 0, l2: 0}\n"


def alias_bomb() -> str:
    """The billion laughs: 9 lists of 9 aliases each stand for 9⁹ ≈ 387 million strings."""
    names = "abcdefghi"
    lines = ["name: s", "workload: {name: diabetes_linear}", "a: &a [" + ",".join("l" * 9) + "]"]
    for before, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{before}"] * 9) + "]")
    lines.append("search_space: {l1: 0, l2: 0, method: *i}")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_within_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    assert path.stat().st_size < 600

    tracemalloc.start()
    try:
        with pytest.raises(DocumentTooLargeError, match=f"more than {MAX_VALUES} values"):
            read_document(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 387 million values expanded would take gigabytes; the check holds a stack of paths.
    assert peak < 20 * 2**20, f"{peak=}"


def test_validate_refuses_the_bomb_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())

    result = CliRunner().invoke(app, ["validate", str(path)])

    assert result.exit_code == 2
    assert f"more than {MAX_VALUES} values" in result.output
    assert len(result.output) < 500


def test_an_alias_that_contains_itself_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text(SPEC + "workload: &w {name: diabetes_linear, params: {me: *w}}\n")

    with pytest.raises(SpecError, match=f"deeper than {MAX_DEPTH} levels"):
        load_spec(path)


def test_a_list_longer_than_any_spec_needs_is_refused_naming_it(tmp_path: Path) -> None:
    names = ", ".join(["nope"] * (MAX_ITEMS + 1))
    path = tmp_path / "long.yaml"
    path.write_text(SPEC.replace("l2: 0}", f"l2: 0, method: [{names}]}}"))

    with pytest.raises(DocumentTooLargeError) as caught:
        read_document(path)

    assert caught.value.field == "search_space.method"
    assert f"at most {MAX_ITEMS}" in str(caught.value)


def test_ordinary_anchors_and_aliases_still_read(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "name: s\nworkload: &w {name: diabetes_linear}\nsearch_space: {l1: &zero 0, l2: *zero}\n"
    )

    spec = load_spec(path)

    assert spec.workload.name == "diabetes_linear"
    assert spec.search_space.l2 == 0


def test_check_size_passes_the_largest_real_document() -> None:
    sweep = {"name": "s", "workload": {"name": "w", "params": {"hidden": [64] * 8}}}
    sweep["search_space"] = {"l1": {"low": 1e-6, "high": 1e-2, "log": True}, "l2": 0}
    check_size({"name": "b", "sweeps": [dict(sweep) for _ in range(500)]})
