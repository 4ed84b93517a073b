"""Reports open in a real browser, offline: Debian's headless Chromium draws every figure.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``); skipped without it, except
under CI (``CI`` set), where its absence is a failure.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from regcore.reports import batch_report, sweep_report
from tests.browser import require_chromium, run_chromium
from tests.regcore.reports.extras import confirm, probe, walk_path
from tests.regcore.reports.studies import fill, make_spec, make_study


@pytest.fixture(scope="module")
def chromium() -> Path:
    return require_chromium()


TWO = (("val_loss", "minimize"), ("sparsity", "maximize"))


def single() -> str:
    """A sweep with everything: a cost probe and a confirmation (its error bars drawn)."""
    study = make_study()
    fill(study, n=30)
    probe(study)
    confirm(study, top=2, seeds=4)
    return sweep_report(study, spec=make_spec(), sweep_id="abc123", status="completed")


def path() -> str:
    study = make_study("path")
    walk_path(study, points=8)
    return sweep_report(study, spec=make_spec("path", sampler={"name": "path"}))


def two_objectives() -> str:
    study = make_study("two", directions=("minimize", "maximize"))
    fill(study, n=30)
    return sweep_report(study, spec=make_spec("two", objectives=TWO), status="running")


def batch() -> str:
    first, second = make_study("first"), make_study("second")
    fill(first, n=20, seed=1)
    fill(second, n=20, seed=2)
    sweeps = [(first, make_spec("first"), "completed"), (second, make_spec("second"), None)]
    return batch_report(sweeps, batch_name="nightly")


# single: confirmation, learning curves, history, a contour per class (3), classes,
# sparsity, importances; path: the same without a confirmation, with the path's figure.
@pytest.mark.parametrize(
    ("build", "n_figures"),
    [(single, 9), (path, 9), (two_objectives, 8), (batch, 2)],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_browser_draws_every_figure(
    chromium: Path, tmp_path: Path, build: Callable[[], str], n_figures: int
) -> None:
    report = build()
    ids = re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', report)
    assert len(ids) == n_figures
    page = tmp_path / "report.html"
    page.write_text(report, encoding="utf-8")
    dom = run_chromium(chromium, page, "--dump-dom").stdout
    dom = re.sub(r"<script\b.*?</script>", "", dom, flags=re.S)  # plotly.js names its classes
    drawn = re.findall(r'<div id="([^"]+)" class="plotly-graph-div js-plotly-plot"', dom)
    assert drawn == ids
    assert dom.count('class="main-svg"') >= n_figures


def read_png(path: Path) -> tuple[int, int, list[list[bytes]]]:
    """Width, height and rows of RGB pixels of an 8-bit truecolour PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, bytearray()
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            # Chromium writes 8-bit RGB or RGBA, not interlaced; nothing else is read here.
            assert (depth, colour in (2, 6), interlace) == (8, True, 0), (depth, colour)
        elif kind == b"IDAT":
            idat += body
    bpp = 3 if colour == 2 else 4
    stride, raw = width * bpp, zlib.decompress(bytes(idat))
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        method, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if method == 2:  # up: no dependence along the row
            line = bytearray((x + b) & 255 for x, b in zip(line, prev, strict=True))
        elif method in (1, 3, 4):  # sub, average, Paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                if method == 1:
                    line[i] = (line[i] + a) & 255
                elif method == 3:
                    line[i] = (line[i] + ((a + b) >> 1)) & 255
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    best = a if pa <= pb and pa <= pc else b if pb <= pc else c
                    line[i] = (line[i] + best) & 255
        rows.append([bytes(line[i : i + 3]) for i in range(0, stride, bpp)])
        prev = line
    return width, height, rows


def test_screenshot_shows_the_plots(chromium: Path, tmp_path: Path) -> None:
    page, png = tmp_path / "report.html", tmp_path / "report.png"
    page.write_text(single(), encoding="utf-8")
    run_chromium(chromium, page, f"--screenshot={png}", "--window-size=1200,3000")
    width, height, rows = read_png(png)
    assert (width, height) == (1200, 3000)
    pixels = Counter(pixel for row in rows for pixel in row)
    assert len(pixels) > 500, f"only {len(pixels)} colours: the page looks blank"
    plot_area = pixels[bytes((0xE5, 0xEC, 0xF6))]  # plotly's default plot background
    assert plot_area > 0.05 * width * height, "plotly's plot areas are missing"
    for method_colour in ("636EFA", "EF553B", "00CC96"):  # the first methods' colours
        assert pixels[bytes.fromhex(method_colour)] > 200, f"no #{method_colour} marks"
