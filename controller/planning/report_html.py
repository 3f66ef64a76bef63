"""HTML rendering of the capacity report: one self-contained page, no scripts, no network.

Pure string building, kept apart from the data work in :mod:`controller.planning.report` so the page layout
can change without touching the numbers. Tables are rendered from the same rounded frames that are written
as CSV (headers included), so every number on the page can be traced to a CSV cell. Charts arrive as SVG
text and are inlined in a ``<figure>``; the layout keeps everything within the page width (tables wrap
their headers, charts scale down), so nothing scrolls sideways at 1280 px.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;
color:#1d2330;background:#fff;line-height:1.4}
h1{font-size:26px;margin:0 0 4px} h2{font-size:20px;margin:32px 0 8px;border-bottom:2px solid #e3e7ef;
padding-bottom:4px} .sub{color:#5b6475;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{flex:1 1 170px;border:1px solid #dfe4ee;border-radius:8px;padding:10px 14px;background:#f7f9fc}
.card .v{font-size:24px;font-weight:600} .card .l{color:#5b6475;font-size:13px}
.card.warn{background:#fff4e5;border-color:#f5b971} .card.bad{background:#fdecec;border-color:#ee9a9a}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px;max-width:100%}
th,td{border:1px solid #dfe4ee;padding:4px 8px;overflow-wrap:anywhere}
th{background:#eef2f8;text-align:left;font-weight:600;vertical-align:bottom}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
figure{margin:8px 0 16px} figure svg{width:100%;max-width:100%;height:auto;display:block}
td:first-child{white-space:nowrap}
figcaption{color:#5b6475;font-size:13px}
.note{color:#5b6475;font-size:13px} ul.risk li{color:#9b2c2c}
"""


@dataclass
class Card:
    label: str
    value: str
    tone: str = ""  # "", "warn" or "bad"


@dataclass
class Section:
    title: str
    intro: str = ""
    charts: list[tuple[str, str]] = field(default_factory=list)  # (caption, SVG text)
    tables: list[tuple[str, pd.DataFrame, str]] = field(default_factory=list)  # (caption, frame, csv file)
    bullets: list[str] = field(default_factory=list)
    bullet_class: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)  # (what, csv file): data not shown as a table


def _cell(v: object) -> tuple[str, bool]:
    if isinstance(v, pd.Timestamp):
        return v.isoformat(), False
    if isinstance(v, bool | np.bool_):
        return str(bool(v)), False
    if isinstance(v, np.integer | np.floating):
        v = v.item()
    if isinstance(v, int | float):
        if pd.isna(v):
            return "", True
        return str(v), True
    text = "" if v is None else str(v)
    return text, text in ("-", "n/a") or _is_number(text)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def table_html(frame: pd.DataFrame, caption: str = "", csv_name: str = "") -> str:
    """A plain HTML table; each cell is ``str()`` of the CSV value (numbers right-aligned)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for rec in frame.itertuples(index=False):
        cells = []
        for v in rec:
            text, numeric = _cell(v)
            cells.append(
                f'<td class="n">{html.escape(text)}</td>' if numeric else f"<td>{html.escape(text)}</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    src = (
        f' <span class="note">(data: <a href="{html.escape(csv_name)}">{html.escape(csv_name)}</a>)</span>'
        if csv_name
        else ""
    )
    cap = (
        f'<caption style="text-align:left"><b>{html.escape(caption)}</b>{src}</caption>'
        if caption or src
        else ""
    )
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render(title: str, subtitle: str, cards: Sequence[Card], sections: Sequence[Section]) -> str:
    """The whole page."""
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f'<h1>{html.escape(title)}</h1><p class="sub">{html.escape(subtitle)}</p>',
        '<div class="cards">',
    ]
    for c in cards:
        tone = f" {c.tone}" if c.tone else ""
        parts.append(
            f'<div class="card{tone}"><div class="v">{html.escape(c.value)}</div>'
            f'<div class="l">{html.escape(c.label)}</div></div>'
        )
    parts.append("</div>")
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.intro:
            parts.append(f"<p>{html.escape(s.intro)}</p>")
        if s.bullets:
            cls = f' class="{s.bullet_class}"' if s.bullet_class else ""
            parts.append(f"<ul{cls}>" + "".join(f"<li>{html.escape(b)}</li>" for b in s.bullets) + "</ul>")
        for caption, svg in s.charts:
            cap = html.escape(caption)
            parts.append(f'<figure class="chart">{svg}<figcaption>{cap}</figcaption></figure>')
        for caption, frame, csv_name in s.tables:
            parts.append(table_html(frame, caption, csv_name))
        if s.links:
            items = "".join(
                f'<li>{html.escape(what)}: <a class="csv" href="{html.escape(n)}">{html.escape(n)}</a></li>'
                for what, n in s.links
            )
            parts.append(f'<ul class="note">{items}</ul>')
    parts.append("</body></html>")
    return "\n".join(parts)
