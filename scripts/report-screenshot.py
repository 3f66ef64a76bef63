#!/usr/bin/env python3
"""Regenerate docs/report-screenshot.png: the README tour's capacity report, rendered by headless Chromium.

The screenshot in docs/report.md shows what the report looks like; rerun this after changing the report's
layout so the picture stays true. It runs the tour's `report` command on the bundled data, captures the top
of the page at 1280 px wide, and stores it as a small palette PNG.

    .venv/bin/python scripts/report-screenshot.py [--height 2300]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "report-screenshot.png"
REPORT = [
    "report", "--history", "data/nyc_taxi.csv", "--counts", "--timezone", "America/New_York",
    "--capacity-per-replica", "1", "--price-per-replica-hour", "0.05", "--currency", "USD", "--quiet",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=2300, help="pixels of the page to keep (default 2300)")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium not found (scripts/install-test-tools.sh installs it)", file=sys.stderr)
        return 1
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report"
        command = [sys.executable, "-m", "controller", *REPORT, "--output", str(out)]
        subprocess.run(command, cwd=ROOT, check=True)
        shot = Path(tmp) / "shot.png"
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={Path(tmp) / 'profile'}", f"--window-size=1280,{args.height}",
             f"--screenshot={shot}", (out / "index.html").as_uri()],
            check=True, capture_output=True, timeout=120,
        )
        image = Image.open(shot).convert("RGB")
        image.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(OUT, optimize=True)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
