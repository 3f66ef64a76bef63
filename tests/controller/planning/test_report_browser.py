"""Renders the capacity report in headless Chromium: it paints, every chart has labelled axes, and nothing
overflows the page sideways at 1280 px (the report's own numbers-equal-CSV checks are in test_report.py)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller import cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/install-test-tools.sh)"),
]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROBE = """<script>
window.addEventListener('load', () => {
  const width = window.innerWidth;
  const out = {width: width, scrollWidth: document.documentElement.scrollWidth, wide: [], charts: {}};
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > width + 0.5) out.wide.push(el.tagName + ' ' + Math.round(r.right));
  }
  for (const svg of document.querySelectorAll('figure.chart svg')) {
    const name = svg.getAttribute('aria-label').replace(/ chart$/, '');
    const box = svg.getBoundingClientRect();
    const labels = (axis) => Array.from(svg.querySelectorAll(`[id^="${name}-${axis}label-"]`)).map(g => {
      const r = g.getBoundingClientRect();
      const inside = r.width > 0 && r.left >= box.left - 1 && r.right <= box.right + 1;
      return {text: g.textContent.trim(), inside: inside};
    });
    out.charts[name] = {x: labels('x'), y: labels('y'), width: box.width};
  }
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = '@@' + 'probe@@' + JSON.stringify(out) + '@@' + 'end@@';  // markers not in this source
  document.body.appendChild(pre);
});
</script></body>"""


def chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    idx = pd.date_range("2026-11-01T00:00:00Z", periods=15 * 24, freq="1h")
    hours = np.asarray(idx.hour)
    y = 100 + 80 * ((hours >= 8) & (hours < 20))
    history = tmp / "history.csv"
    pd.DataFrame({"timestamp": [t.isoformat() for t in idx], "value": y}).to_csv(history, index=False)
    mp = pytest.MonkeyPatch()
    mp.setattr(cli, "SUBCOMMAND_MODULES", ("controller.cli.report",))
    try:
        rc = cli.main(
            [
                "report",
                "--history",
                str(history),
                "--capacity-per-replica",
                "10",
                "--output",
                str(tmp / "out"),
                "--horizon",
                "2d",
                "--model",
                "seasonal_median",
                "--simulate-days",
                "0",
            ]
        )
    finally:
        mp.undo()
    assert rc == 0
    return tmp / "out" / "index.html"


def test_screenshot_is_not_blank(report_html: Path, tmp_path: Path) -> None:
    from matplotlib import image

    shot = tmp_path / "shot.png"
    res = chromium(["--window-size=1280,2000", f"--screenshot={shot}", report_html.as_uri()], tmp_path)
    assert shot.exists(), res.stderr[-2000:]
    pixels = image.imread(str(shot))
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    rgb = pixels[..., :3]
    assert float(rgb.std()) > 0.05  # not a blank page
    assert float((rgb.mean(axis=2) < 0.5).mean()) > 0.005  # there is dark ink (text, lines) on it


@pytest.fixture(scope="module")
def probe(report_html: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("probe")
    page = tmp / "probe.html"
    page.write_text(report_html.read_text().replace("</body>", PROBE))
    res = chromium(["--window-size=1280,900", "--dump-dom", page.as_uri()], tmp)
    m = re.search(r"@@probe@@(.*?)@@end@@", res.stdout, flags=re.S)
    assert m, res.stderr[-2000:]
    return json.loads(html.unescape(m.group(1)))


def test_every_chart_has_labelled_axes(probe: dict) -> None:
    charts = probe["charts"]
    assert set(charts) == {"forecast", "plan", "outlook"}  # no simulation: --simulate-days 0
    for name, axes in charts.items():
        for axis in ("x", "y"):
            assert axes[axis], f"{name}: no {axis} axis label"
            for label in axes[axis]:
                assert label["text"] and label["inside"], f"{name}: {axis} label {label}"
        assert axes["width"] > 600, name  # scaled to the page, not a thumbnail


def test_no_horizontal_overflow_at_1280px(probe: dict) -> None:
    assert probe["width"] == 1280
    assert probe["scrollWidth"] <= probe["width"]
    assert probe["wide"] == []
