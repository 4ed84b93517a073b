"""Shared HTML: one self-contained document (plotly.js inlined once) and small escaped parts.

Every string that reaches the page goes through :func:`text` or :func:`attr` (sweep names,
workloads, statuses and trial attributes come from users), or is :class:`Markup` built here.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from plotly.offline import get_plotlyjs

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
       margin: 0 auto; max-width: 1200px; padding: 0 24px 48px; background: #fff; }
h1 { font-size: 26px; margin: 28px 0 4px; word-break: break-word; }
h2 { font-size: 19px; margin: 32px 0 8px; border-bottom: 1px solid #dde2ea; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 0 0 6px; word-break: break-word; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0; }
dl.facts dt { color: #5b6475; } dl.facts dd { margin: 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border: 1px solid #dde2ea; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f5f9; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre.paste { background: #f3f5f9; border: 1px solid #dde2ea; padding: 8px 12px; overflow-x: auto; }
p.note { color: #5b6475; background: #fafbfc; border-left: 3px solid #c4ccd8; padding: 6px 10px; }
.scroll { overflow-x: auto; } td code { white-space: nowrap; }
.figure { margin: 8px 0; } .grid { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.card { border: 1px solid #dde2ea; border-radius: 6px; padding: 12px; min-width: 0; }
p.verdict { font-size: 17px; background: #f1f7f2; border-left: 4px solid #2e8b57;
            padding: 10px 14px; }
p.path { background: #f3f5f9; border-left: 3px solid #636efa; padding: 6px 10px; }
"""


class Markup(str):
    """HTML built by this package: already escaped, inserted as is."""


def text(value: object) -> Markup:
    """``value`` as HTML text content; quotes stay as they are, so code can be pasted."""
    return Markup(html.escape(str(value), quote=False))


def attr(value: object) -> Markup:
    """``value`` inside a double-quoted HTML attribute."""
    return Markup(html.escape(str(value), quote=True))


def cell(value: object) -> Markup:
    return value if isinstance(value, Markup) else text(value)


def num(value: object, spec: str = ".6g") -> str:
    """A number for a table; "—" where there is none (NaN: a value that was never set)."""
    if value is None or value != value:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return format(value, spec)


@dataclass(frozen=True)
class Note:
    """Why a figure is not there, shown in its place."""

    text: str


def note(message: str) -> Markup:
    return Markup(f'<p class="note">{text(message)}</p>')


def code(line: str, *, block: bool = True) -> Markup:
    """Code to copy: a block of its own, or (``block=False``) inline, e.g. in a table."""
    if not block:
        return Markup(f"<code>{text(line)}</code>")
    return Markup(f'<pre class="paste"><code>{text(line)}</code></pre>')


def definitions(items: Iterable[tuple[str, object]]) -> Markup:
    """A definition list of label → value pairs."""
    rows = "".join(f"<dt>{text(k)}</dt><dd>{cell(v)}</dd>" for k, v in items)
    return Markup(f'<dl class="facts">{rows}</dl>')


def table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], *, numeric: Iterable[int] = ()
) -> Markup:
    """A table; each cell escaped unless it is :class:`Markup`. ``numeric`` columns align right."""
    right = set(numeric)
    head = "".join(f"<th>{text(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell(v)}</td>' if i in right else f"<td>{cell(v)}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    markup = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return Markup(f'<div class="scroll">{markup}</div>')


def section(section_id: str, title: str, *parts: str) -> Markup:
    return Markup(
        f'<section id="{attr(section_id)}"><h2>{text(title)}</h2>{"".join(parts)}</section>'
    )


def figure(fig: Any | Note, *, div_id: str, height: int = 440) -> Markup:
    """A plotly figure as a ``<div>`` and the script that draws it (plotly.js not included),
    or the note standing in for it. Fixed ids keep a report the same for the same study."""
    if isinstance(fig, Note):
        return note(fig.text)
    body = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        default_height=f"{height}px",
        config={"displaylogo": False, "responsive": True},
    )
    return Markup(f'<div class="figure">{body}</div>')


def document(title: str, body: str) -> str:
    """The whole page: offline, with plotly.js inlined exactly once, before any figure."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{text(title)}</title>\n<style>{_CSS}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
