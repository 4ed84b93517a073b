"""Reading a report back: its sections, notes, tables and the figures' plotly JSON.

A figure is read from the ``Plotly.newPlot("id", data, layout, config)`` call that draws
it, as the browser would get it (plotly's JSON escapes non-ASCII text: ``\\u03bb`` for λ,
so compare texts from :func:`plotted`, not from the raw page).
"""

from __future__ import annotations

import html
import json
import re
from typing import Any


def section(report: str, section_id: str) -> str:
    """The HTML of one ``<section>`` of the report."""
    match = re.search(rf'<section id="{section_id}">(.*?)</section>', report, re.S)
    assert match, f"no section {section_id!r} in the report"
    return match.group(1)


def n_figures(fragment: str) -> int:
    return fragment.count("Plotly.newPlot(")


def figure_ids(fragment: str) -> list[str]:
    return re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', fragment)


def notes(fragment: str) -> list[str]:
    """The notes' texts (markup such as ``<code>`` taken out)."""
    found = re.findall(r'<p class="note">(.*?)</p>', fragment, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", n)) for n in found]


def cells(fragment: str) -> list[list[str]]:
    """The rows of the tables in ``fragment``, as unescaped cell texts."""
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c))
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", fragment, re.S)
    ]


def plotted(report: str, div_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The traces and the layout of the figure drawn into ``div_id``."""
    match = re.search(rf'Plotly\.newPlot\(\s*"{re.escape(div_id)}",', report)
    assert match, f"no figure {div_id!r} in the report"
    decoder = json.JSONDecoder()
    pos = report.index("[", match.end())
    data, pos = decoder.raw_decode(report, pos)
    pos = report.index("{", pos)
    layout, _ = decoder.raw_decode(report, pos)
    return data, layout


def texts(layout: dict[str, Any]) -> list[str]:
    """The layout's title and annotation texts."""
    title = layout.get("title", {})
    found = [title.get("text", "")] if isinstance(title, dict) else []
    return found + [a.get("text", "") for a in layout.get("annotations", [])]
