"""Tests of the `report` command: files written, numbers on the page equal the CSVs, images embedded."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller import cli
from controller.planning.report_html import Card, Section, render, table_html

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Tables(HTMLParser):
    """Collects tables as (csv name from the caption link, rows of cell texts) and image sources."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[str, list[list[str]]]] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._in_caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.tables.append(("", []))
        elif tag == "caption":
            self._in_caption = True
        elif tag == "a" and self._in_caption:
            self.tables[-1] = (str(a.get("href")), self.tables[-1][1])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(str(a.get("src")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self._in_caption = False
        elif tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1][1].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def write_history(tmp_path: Path) -> str:
    idx = pd.date_range("2026-11-01T00:00:00Z", periods=21 * 24 * 4, freq="15min")
    hours = np.asarray(idx.hour + idx.minute / 60)
    rng = np.random.default_rng(7)
    y = 100 + 120 * np.exp(-((hours - 19) ** 2) / 6) + rng.normal(0, 4, len(idx))
    path = tmp_path / "history.csv"
    pd.DataFrame({"timestamp": [t.isoformat() for t in idx], "value": y.round(2)}).to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    history = write_history(tmp)
    out = tmp / "out"
    mp = pytest.MonkeyPatch()
    mp.setattr(cli, "SUBCOMMAND_MODULES", ("controller.cli.report",))
    try:
        rc = cli.main(
            [
                "report",
                "--history",
                history,
                "--capacity-per-replica",
                "10",
                "--max-replicas",
                "24",
                "--output",
                str(out),
                "--horizon",
                "3d",
                "--model",
                "seasonal_median",
                "--simulate-days",
                "2d",
                "--price-per-replica-hour",
                "0.5",
                "--quota-tps",
                "230",
                "--paydays",
                "1,15",
            ]
        )
    finally:
        mp.undo()
    assert rc == 0
    return out


@pytest.mark.slow
def test_report_writes_every_file(report_dir: Path) -> None:
    names = {p.name for p in report_dir.iterdir()}
    assert {
        "index.html",
        "history.csv",
        "forecast.csv",
        "plan.csv",
        "scaleups.csv",
        "peak_days.csv",
        "cost.csv",
        "quality.csv",
        "simulation.csv",
        "risks.csv",
        "events.csv",
        "warmups.csv",
    } <= names
    page = (report_dir / "index.html").read_text()
    assert (
        "http://" not in page and "https://" not in page and "<script" not in page
    )  # no network, no scripts


@pytest.mark.slow
def test_numbers_in_html_equal_csvs(report_dir: Path) -> None:
    parser = Tables()
    parser.feed((report_dir / "index.html").read_text())
    linked = [(name, rows) for name, rows in parser.tables if name]
    assert {n for n, _ in linked} >= {
        "peak_days.csv",
        "cost.csv",
        "quality.csv",
        "simulation.csv",
        "scaleups.csv",
        "risks.csv",
        "warmups.csv",
    }
    for name, rows in linked:
        csv = pd.read_csv(report_dir / name, dtype=str, keep_default_na=False)
        assert rows[0] == list(csv.columns), name
        body = rows[1:]
        first = 24 if name in ("scaleups.csv", "warmups.csv") else len(csv)  # long lists: first 24 shown
        assert len(body) == min(len(csv), first), name
        expected = csv.head(len(body)).to_numpy().tolist()
        assert body == expected, name
    plan = pd.read_csv(report_dir / "plan.csv")
    fc = pd.read_csv(report_dir / "forecast.csv")
    page = (report_dir / "index.html").read_text()
    cards = dict(re.findall(r'<div class="v">([^<]*)</div><div class="l">([^<]*)</div>', page))
    by_label = {v: k for k, v in cards.items()}
    assert float(by_label["replicas needed at peak"]) == plan["need"].max()
    assert float(by_label["peak forecast (req/s)"]) == round(fc["yhat"].max(), 1)


@pytest.mark.slow
def test_simulation_and_risks_make_sense(report_dir: Path) -> None:
    sim = pd.read_csv(report_dir / "simulation.csv").set_index("policy")
    assert list(sim.index) == ["predictive", "reactive", "oracle"]
    assert sim.loc["oracle", "vs_oracle"] == 1.0 and sim.loc["oracle", "intervals_short_pct"] == 0
    risks = pd.read_csv(report_dir / "risks.csv")
    assert set(risks["kind"]) == {"max_replicas", "quota"}  # 24 x 10 req/s < evening mean + 10%
    capped = risks[risks["kind"] == "max_replicas"]
    assert (capped["replicas_ready"] == 24).all() and (capped["replicas_needed"] > 24).all()
    assert capped["reason"].str.contains("MaxCapacityExceeded").all()  # decide's own reason code
    plan = pd.read_csv(report_dir / "plan.csv")
    assert plan["replicas"].between(1, 24).all()
    at_max = plan[plan["capped"]]
    assert len(at_max) and (at_max["need"] > at_max["replicas"]).all()
    # Replicas ready in a row were requested one lead (start-up 90s + warm-up 30s) before it.
    ups = pd.read_csv(report_dir / "scaleups.csv")
    lead = pd.to_datetime(ups["ready_by"], utc=True) - pd.to_datetime(ups["request_at"], utc=True)
    assert (lead == pd.Timedelta(seconds=90)).all()
    assert (pd.to_datetime(ups["ready_by"], utc=True) <= pd.to_datetime(ups["needed_at"], utc=True)).all()


@pytest.mark.slow
def test_images_are_embedded_pngs(report_dir: Path) -> None:
    parser = Tables()
    parser.feed((report_dir / "index.html").read_text())
    assert len(parser.images) == 3
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png.startswith(PNG_MAGIC)
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert width > 400 and height > 150


def test_render_escapes_and_formats() -> None:
    frame = pd.DataFrame({"name": ["<b>x</b>"], "n": [3], "flag": [True], "v": [np.nan]})
    html = table_html(frame, "cap & more", "f.csv")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "cap &amp; more" in html
    assert '<td class="n">3</td>' in html and "<td>True</td>" in html
    page = render("T", "sub", [Card("l", "1", "bad")], [Section("S", "intro", bullets=["b"])])
    assert page.startswith("<!DOCTYPE html>") and 'class="card bad"' in page
