"""Renders the capacity report once in headless Chromium: the page paints and every embedded image decodes."""

from __future__ import annotations

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
  const imgs = Array.from(document.images);
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = 'IMAGES ' + imgs.length + ' LOADED ' +
    imgs.filter(i => i.complete && i.naturalWidth > 0).length + ' END';
  document.body.appendChild(out);
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


def test_images_load_in_the_browser(report_html: Path, tmp_path: Path) -> None:
    probe = tmp_path / "probe.html"
    probe.write_text(report_html.read_text().replace("</body>", PROBE))
    res = chromium(["--dump-dom", probe.as_uri()], tmp_path)
    m = re.search(r"IMAGES (\d+) LOADED (\d+) END", res.stdout)
    assert m, res.stderr[-2000:]
    assert int(m.group(1)) == 2  # forecast and plan charts (simulation skipped)
    assert m.group(1) == m.group(2)
