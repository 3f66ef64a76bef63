"""Tests of the `report` command: files written, numbers on the page equal the CSVs, what a planner reads."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller import cli
from controller.planning.report_html import Card, Section, render, table_html

LEAD = pd.Timedelta(seconds=90)  # start-up 60s (the default) + warm-up 30s


class Page(HTMLParser):
    """Tables as (csv name from the caption link, rows of cell texts), the CSV links, the charts' text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[str, list[list[str]]]] = []
        self.links: list[str] = []
        self.charts: dict[str, list[str]] = {}  # chart name -> its texts
        self.ids: dict[str, str] = {}  # element id -> its text (label groups of the charts)
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._in_caption = False
        self._chart: str | None = None
        self._open_ids: list[tuple[str, int]] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self._depth += 1
        if tag == "table":
            self.tables.append(("", []))
        elif tag == "caption":
            self._in_caption = True
        elif tag == "a" and self._in_caption:
            self.tables[-1] = (str(a.get("href")), self.tables[-1][1])
        elif tag == "a" and a.get("class") == "csv":
            self.links.append(str(a.get("href")))
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "svg":
            self._chart = str(a.get("aria-label", "")).removesuffix(" chart")
            self.charts[self._chart] = []
        if a.get("id") and self._chart:
            self._open_ids.append((str(a["id"]), self._depth))
            self.ids.setdefault(str(a["id"]), "")

    def handle_endtag(self, tag: str) -> None:
        self._open_ids = [(i, d) for i, d in self._open_ids if d < self._depth]
        self._depth -= 1
        if tag == "caption":
            self._in_caption = False
        elif tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1][1].append(self._row)
            self._row = None
        elif tag == "svg":
            self._chart = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._chart and data.strip():
            self.charts[self._chart].append(data.strip())
            for i, _ in self._open_ids:
                self.ids[i] += data.strip()


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text())
    return page


def write_history(tmp_path: Path, days: int = 42) -> str:
    idx = pd.date_range("2026-10-19T00:00:00Z", periods=days * 24 * 4, freq="15min")
    hours = np.asarray(idx.hour + idx.minute / 60)
    rng = np.random.default_rng(7)
    y = 100 + 120 * np.exp(-((hours - 19) ** 2) / 6) + rng.normal(0, 4, len(idx))
    outage = idx[-1] - pd.Timedelta(days=5)
    y[(idx >= outage) & (idx < outage + pd.Timedelta("6h"))] = 0
    path = tmp_path / "history.csv"
    pd.DataFrame({"timestamp": [t.isoformat() for t in idx], "value": y.round(2)}).to_csv(path, index=False)
    return str(path)


def write_replicas(tmp_path: Path) -> str:
    idx = pd.date_range("2026-11-25T00:00:00Z", "2026-11-30T00:00:00Z", freq="5min")
    path = tmp_path / "replicas.csv"
    pd.DataFrame({"time": [t.isoformat() for t in idx], "replicas": 20}).to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    out = tmp / "out"
    mp = pytest.MonkeyPatch()
    mp.setattr(cli, "SUBCOMMAND_MODULES", ("controller.cli.report",))
    try:
        rc = cli.main([
            "report", "--history", write_history(tmp), "--capacity-per-replica", "10", "--max-replicas", "24",
            "--output", str(out), "--horizon", "3d", "--model", "seasonal_median", "--simulate-days", "2d",
            "--price-per-replica-hour", "0.5", "--currency", "EUR", "--quota-tps", "230", "--paydays", "1,15",
            "--replicas-history", write_replicas(tmp), "--growth", "10%", "--growth", "50%",
            "--event", "2026-11-30T17:00Z/4h x1.5", "--quiet",
        ])
    finally:
        mp.undo()
    assert rc == 0
    return out


def csv(report_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(report_dir / name)


@pytest.mark.slow
def test_report_writes_every_file(report_dir: Path) -> None:
    names = {p.name for p in report_dir.iterdir()}
    assert {
        "index.html", "history.csv", "forecast.csv", "plan.csv", "scaleups.csv", "warmups.csv", "days.csv",
        "cost.csv", "quality.csv", "simulation.csv", "risks.csv", "events.csv", "scenarios.csv",
        "outlook_weekly.csv", "outlook_monthly.csv",
    } <= names
    page = (report_dir / "index.html").read_text()
    # Nothing is loaded from the network (xmlns URIs are names, not requests), no scripts, charts inline.
    assert not re.search(r"""(src|href)=["']?https?:|url\(["']?https?:|@import""", page)
    assert "<script" not in page and "<img" not in page and "<link" not in page


@pytest.mark.slow
def test_numbers_in_html_equal_csvs(report_dir: Path) -> None:
    page = parse(report_dir / "index.html")
    linked = [(name, rows) for name, rows in page.tables if name]
    assert {n for n, _ in linked} >= {
        "days.csv", "cost.csv", "quality.csv", "simulation.csv", "risks.csv", "scenarios.csv",
        "outlook_weekly.csv",
    }
    for name, rows in linked:
        frame = pd.read_csv(report_dir / name, dtype=str, keep_default_na=False)
        assert rows[0] == list(frame.columns), name
        assert rows[1:] == frame.to_numpy().tolist(), name  # every row: long lists are CSV-only links
    assert {"plan.csv", "scaleups.csv", "warmups.csv"} <= set(page.links)
    plan, fc = csv(report_dir, "plan.csv"), csv(report_dir, "forecast.csv")
    text = (report_dir / "index.html").read_text()
    cards = {label: value for value, label in
             re.findall(r'<div class="v">([^<]*)</div><div class="l">([^<]*)</div>', text)}
    assert float(cards["replicas needed at peak"]) == plan["need"].max()
    assert float(cards["peak forecast (req/s)"]) == round(fc["yhat"].max(), 1)
    assert float(cards["cost (EUR) over 3d"]) == round(plan["replica_hours"].sum() * 0.5, 2)
    assert int(cards["warm-ups over 3d"]) == len(csv(report_dir, "warmups.csv"))


@pytest.mark.slow
def test_day_summary_adds_up_to_the_full_lists(report_dir: Path) -> None:
    days, ups = csv(report_dir, "days.csv"), csv(report_dir, "scaleups.csv")
    warm = csv(report_dir, "warmups.csv")
    assert days["scale-ups"].sum() == len(ups) and days["warm-ups"].sum() == len(warm)
    assert list(days.columns[:3]) == ["day", "peak forecast (req/s)", "peak upper (req/s)"]
    assert not any("_" in c for c in days.columns)  # readable headers
    first = ups.groupby(pd.to_datetime(ups["request_at"], utc=True).dt.date)["request_at"].first()
    shown = days.set_index(days["day"].str[4:])["first scale-up"]
    for day, stamp in first.items():
        assert shown[str(day)] == pd.Timestamp(stamp).strftime("%H:%M:%S")
    low, high = zip(*(map(int, r.split("-")) for r in days["replicas (band)"]), strict=True)
    plan = csv(report_dir, "plan.csv")
    day_of = pd.to_datetime(plan["ds"], utc=True).dt.date.astype(str)
    assert list(high) == plan.groupby(day_of)["need"].max().tolist()  # the band's top is the plan's need
    assert list(low) == plan.groupby(day_of)["band_low_need"].max().tolist()
    assert all(lo <= hi for lo, hi in zip(low, high, strict=True))


@pytest.mark.slow
def test_simulation_scenarios_and_risks_make_sense(report_dir: Path) -> None:
    sim = pd.read_csv(report_dir / "simulation.csv", dtype={"warm-ups": str}).set_index("policy")
    assert list(sim.index) == ["predictive", "reactive", "cron", "oracle", "as run"]
    assert sim.loc["oracle", "vs oracle (x)"] == 1.0 and sim.loc["oracle", "intervals short (%)"] == 0
    assert sim.loc["as run", "replica-hours"] == pytest.approx(20 * 48, abs=0.1)  # 20 replicas for 2 days
    assert (sim.loc[["reactive", "cron", "oracle", "as run"], "warm-ups"] == "-").all()
    assert int(sim.loc["predictive", "warm-ups"]) > 0
    risks = csv(report_dir, "risks.csv")
    assert set(risks["kind"]) == {"at max replicas", "over quota"}  # 24 x 10 req/s < evening peak band
    capped = risks[risks["kind"] == "at max replicas"]
    assert (capped["replicas ready"] == 24).all() and (capped["replicas needed"] > 24).all()
    assert capped["reason"].str.contains("MaxCapacityExceeded").all()  # decide's own reason code
    plan = csv(report_dir, "plan.csv")
    assert plan["replicas"].between(1, 24).all() and (plan["band_low_need"] <= plan["need"]).all()
    ups = csv(report_dir, "scaleups.csv")
    ahead = pd.to_datetime(ups["needed_at"], utc=True) - pd.to_datetime(ups["request_at"], utc=True)
    assert (ahead >= LEAD).all() and list(ups.columns) == ["request_at", "needed_at", "ahead", "from", "to"]
    sc = csv(report_dir, "scenarios.csv").set_index("scenario")
    assert list(sc.index) == ["baseline (the plan above)", "growth 10%", "growth 50%",
                              "event 2026-11-30T17:00Z/4h x1.5"]
    assert sc.loc["baseline (the plan above)", "replica-hours"] == round(plan["replica_hours"].sum(), 1)
    assert sc.loc["growth 50%", "replica-hours"] > sc.loc["growth 10%", "replica-hours"] > \
        sc.loc["baseline (the plan above)", "replica-hours"]
    assert sc.loc["growth 50%", "hours at max"] >= sc.loc["baseline (the plan above)", "hours at max"]


@pytest.mark.slow
def test_quality_and_outlook_read_like_the_cli(report_dir: Path) -> None:
    q = csv(report_dir, "quality.csv")
    assert list(q.columns) == ["model", "WAPE (%)", "MAPE (%)", "bias (%)", "band coverage (%)", "folds"]
    assert q["model"].iloc[0].endswith("(chosen)") and q["WAPE (%)"].between(0, 100).all()
    assert q["WAPE (%)"].iloc[1:].is_monotonic_increasing and (q["folds"] > 1).all()
    weekly = csv(report_dir, "outlook_weekly.csv")
    assert len(weekly) == 3  # 6 full weeks seen (the outage leaves 96% of its week): half of them ahead
    assert pd.Timestamp(weekly["week from"].iloc[0]) >= pd.Timestamp("2026-11-30")  # after the history
    assert (weekly["band low (req/s)"] <= weekly["peak (req/s)"]).all()
    assert (weekly["peak (req/s)"] <= weekly["band high (req/s)"]).all()
    assert csv(report_dir, "outlook_monthly.csv").empty
    page = (report_dir / "index.html").read_text()
    assert "Monthly: needs at least 4 full months of history to look ahead; this history has 1" in page


@pytest.mark.slow
def test_charts_are_labelled_and_mark_what_matters(report_dir: Path) -> None:
    page = parse(report_dir / "index.html")
    assert set(page.charts) == {"forecast", "plan", "outlook", "simulation"}
    for chart in page.charts:
        xs = [t for i, t in page.ids.items() if i.startswith(f"{chart}-xlabel-")]
        ys = [t for i, t in page.ids.items() if i.startswith(f"{chart}-ylabel-")]
        assert xs and ys and all(xs) and all(ys), chart
    assert "excluded outage (not learned as demand)" in page.charts["forecast"]
    assert "max replicas (24)" in page.charts["plan"]  # the plan reaches max replicas: the line is drawn
    assert "as run: ready capacity (lowest)" in page.charts["simulation"]


def test_render_escapes_and_formats() -> None:
    frame = pd.DataFrame({"name": ["<b>x</b>"], "n": [3], "flag": [True], "v": [np.nan], "c": ["n/a"]})
    html = table_html(frame, "cap & more", "f.csv")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "cap &amp; more" in html
    assert '<td class="n">3</td>' in html and "<td>True</td>" in html and '<td class="n">n/a</td>' in html
    page = render("T", "sub", [Card("l", "1", "bad")], [Section("S", "intro", bullets=["b"],
                                                                links=[("all rows", "x.csv")])])
    assert page.startswith("<!DOCTYPE html>") and 'class="card bad"' in page
    assert '<a class="csv" href="x.csv">x.csv</a>' in page


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--growth", "lots"], "--growth: 'lots' must be a percentage"),
        (["--replicas-history", "r.csv", "--simulate-days", "0"], "give --simulate-days > 0"),
        (["--price-per-replica-hour", "-1"], "--price-per-replica-hour: must be zero or positive"),
        (["--event", "2027-01-30T17:00/4h x2", "--model", "snaive"], "outside the report's horizon"),
    ],
    ids=["bad-growth", "replicas-without-simulation", "negative-price", "event-after-the-horizon"],
)
def test_bad_flags_fail_fast_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], extra: list[str],
    message: str,
) -> None:
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", ("controller.cli.report",))
    argv = ["report", "--history", write_history(tmp_path, days=3), "--capacity-per-replica", "10",
            "--output", str(tmp_path / "out"), "--quiet", *extra]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "out" / "index.html").exists()
