"""The README and the docs/ site say what the repository holds.

`mkdocs build --strict` (in `make lint`) checks the links between the site's pages and their
anchors; these tests check what it cannot: the README's length and links (it is not part of
the site), that its core example runs, that every repository path the documents name exists,
and that the architecture page's trial kinds table is the code's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from pymdownx.slugs import slugify

from regcore.regularizers import sparsity
from regcore.trial_kinds import RULES, TrialKind

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.M)
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
# A path into the repository (in prose, code spans, commands and snippet includes).
_REPO_PATH = re.compile(
    r"(?<![\w./-])((?:regcore|service|worker|cli|tests|bench|examples|deploy|docs|constraints)"
    r"/[\w./-]*)"
)
_GENERATED = ("bench/results",)  # written by the benchmarks, ignored by git
_PLACEHOLDER = re.compile(r"(^|/)[A-Z_]+(\.\w+)?(/|$)")  # bench/NAME.py: "any of them"


def _documents() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


_SLUGIFY = slugify(case="lower")  # mkdocs.yml's toc slugify: "Time to λ" is #time-to-λ


def _slug(heading: str) -> str:
    """The anchor mkdocs gives a heading: its text without markup, slugified."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return str(_SLUGIFY(text, "-"))


def _anchors(page: Path) -> set[str]:
    return {_slug(h) for h in _HEADING.findall(_FENCE.sub("", page.read_text()))}


def test_readme_is_at_most_250_lines() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines, more than {MAX_README_LINES}: move the detail into "
        "a page under docs/ and link it"
    )


def test_readme_links_point_at_files_and_headings_that_exist() -> None:
    links = _LINK.findall(_FENCE.sub("", README.read_text()))
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert local, "the README links into docs/"
    problems = []
    for link in local:
        path, _, anchor = link.partition("#")
        target = (README.parent / path) if path else README
        if not target.exists():
            problems.append(f"{link}: no file {path}")
        elif anchor and anchor not in _anchors(target):
            problems.append(f"{link}: {path or 'README.md'} has no heading #{anchor}")
    assert not problems, "README.md links to what is not there:\n" + "\n".join(problems)


def test_documents_name_only_repository_paths_that_exist() -> None:
    missing = []
    for document in _documents():
        for path in _REPO_PATH.findall(document.read_text()):
            path = path.rstrip(".")
            if path.startswith(_GENERATED) or _PLACEHOLDER.search(path):
                continue
            if not (ROOT / path).exists():
                missing.append(f"{document.relative_to(ROOT)}: {path}")
    assert not missing, "documents name paths that do not exist:\n" + "\n".join(missing)


def test_readme_regularizer_example_runs_and_makes_exact_zeros(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = README.read_text()
    marker = text.index("<!-- tests/test_docs.py runs the next python block -->")
    block = re.search(r"```python\n(.*?)```", text[marker:], re.S)
    assert block is not None
    namespace: dict[str, object] = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)

    model, reg = namespace["model"], namespace["reg"]
    assert isinstance(model, torch.nn.Module)
    assert sparsity(model) > 0  # proximal: weights exactly zero, as the README says
    assert "exactly zero:" in capsys.readouterr().out
    assert reg.penalty().item() > 0  # type: ignore[attr-defined]


def _kinds_table() -> dict[str, list[bool]]:
    rows = {}
    text = (DOCS / "architecture.md").read_text()
    for line in text.splitlines():
        match = re.match(r"\| `(\w+)` \|", line)
        if match and match[1] in {k.value for k in TrialKind}:
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[match[1]] = [c == "yes" for c in cells[2:]]
    return rows


def test_architecture_trial_kinds_table_is_regcore_trial_kinds() -> None:
    documented = _kinds_table()
    code = {
        kind.value: [
            rules.uses_budget,
            rules.prunable,
            rules.requeued,
            rules.from_scratch,
            rules.baseline,
            rules.in_search_study,
        ]
        for kind, rules in RULES.items()
    }
    assert documented == code, (
        "docs/architecture.md's trial kinds table differs from regcore.trial_kinds.RULES: "
        "update the page (a row per kind, the columns in RULES' order)"
    )
