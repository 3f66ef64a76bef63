#!/usr/bin/env python3
"""Generate docs/configuration.md from the config dataclasses, so the reference never drifts from the code.

Each entry of SECTIONS names a top-level YAML key and the dataclass that reads it (``module:Class``); the
table rows come from :func:`forecaster.configbase.describe`, i.e. from each field's ``doc()`` metadata.
To document a new section, add a line to SECTIONS and re-run:

    .venv/bin/python scripts/gen-config-docs.py            # rewrite docs/configuration.md
    .venv/bin/python scripts/gen-config-docs.py --check    # exit 1 if the file is out of date (CI)
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import sys
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from forecaster.configbase import describe  # noqa: E402
from forecaster.durations import format_duration  # noqa: E402

OUTPUT = ROOT / "docs" / "configuration.md"

# (top-level key, "module:Class", optional) - optional sections are skipped while their module does not exist.
SECTIONS: list[tuple[str, str, bool]] = [
    ("source", "forecaster.job.config:SourceConfig", False),
    ("forecast", "forecaster.job.config:ForecastConfig", False),
    ("store", "forecaster.job.config:StoreConfig", False),
    ("schedule", "forecaster.job.config:ScheduleConfig", False),
    ("metrics", "forecaster.job.config:MetricsConfig", False),
    ("logging", "forecaster.job.config:LoggingConfig", False),
    ("controller", "controller.config:ControllerConfig", True),
]

INTRO = """\
# Configuration reference

One YAML file configures the forecast job (`recharge-autoscaler forecast-job --config FILE`) and the
controller (`controller` section). It is validated when a command starts: an unknown key, a wrong type or
an out-of-range value stops the command with one line naming the field, e.g.
`config.yaml: source.prometheus.step: cannot parse '5 minutes'; use a number with a unit ...`.

- Keys are camelCase. Durations are written `30s`, `5m`, `2h`, `7d` or a number of seconds.
- Relative paths are resolved against the directory of the config file.
- Secret file paths can be overridden by environment variables: `RECHARGE_PROMETHEUS_BEARER_TOKEN_FILE`,
  `RECHARGE_PROMETHEUS_PASSWORD_FILE`, `RECHARGE_PROMETHEUS_CA_FILE`.
- A complete example is `data/sample-config.yaml` (what `make run` uses).

This page is generated from the code by `scripts/gen-config-docs.py`; edit the field documentation there.
"""


def _load(spec: str) -> type | None:
    module, _, name = spec.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise
    return getattr(mod, name, None)


def _default(type_name: str, default: str) -> str:
    if default in ("", "(required)"):
        return default or "-"
    if default == "None":
        return "unset"
    if default in ("True", "False"):
        return default.lower()
    if type_name.startswith("duration"):
        try:
            return format_duration(pd.Timedelta(seconds=float(default)))
        except ValueError:
            return default
    return default


def _rows(cls: type, prefix: str) -> list[tuple[str, str, str, str]]:
    """describe(), also descending into optional sub-sections (``prometheus: PrometheusConfig | None``)."""
    hints = typing.get_type_hints(cls)
    by_key = {prefix + key: f for f in dataclasses.fields(cls) if f.init for key in [_key(f)]}
    out: list[tuple[str, str, str, str]] = []
    for row in describe(cls, prefix):
        out.append(row)
        f = by_key.get(row[0])
        if f is None or not row[1].startswith("section"):
            continue
        inner = [a for a in typing.get_args(hints[f.name]) if dataclasses.is_dataclass(a)]
        if inner and isinstance(inner[0], type):
            out.extend(_rows(inner[0], row[0] + "."))
    return out


def _key(f: dataclasses.Field[typing.Any]) -> str:
    from forecaster.configbase import key_of

    return key_of(f)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    out = [INTRO]
    for key, spec, optional in SECTIONS:
        cls = _load(spec)
        if cls is None:
            if optional:
                continue
            raise SystemExit(f"gen-config-docs: cannot import {spec}")
        assert dataclasses.is_dataclass(cls)
        summary = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
        out.append(f"## `{key}`\n\n{summary}\n")
        out.append("| key | type | default | description |")
        out.append("|---|---|---|---|")
        for path, type_name, default, text in _rows(cls, f"{key}."):
            if type_name.startswith("section"):
                out.append(f"| **`{path}`** | section | | {_cell(text)} |")
                continue
            shown = _cell(_default(type_name, default))
            out.append(f"| `{path}` | {_cell(type_name)} | {shown} | {_cell(text)} |")
        out.append("")
    out.extend(_job_metrics())
    return "\n".join(out).rstrip() + "\n"


def _job_metrics() -> list[str]:
    """The forecast job's /metrics series (served while it runs on its schedule)."""
    from forecaster.job.metrics import JobMetrics

    rows = [
        "## Metrics of the forecast job",
        "",
        "Served on `metrics.address:metrics.port` at `/metrics` while `forecast-job` runs on its schedule.",
        "Alert when `time() - recharge_forecast_job_last_success_timestamp_seconds` exceeds a few schedule",
        "periods.",
        "",
        "| metric | type | description |",
        "|---|---|---|",
    ]
    for family in JobMetrics().registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        rows.append(f"| `{name}` | {family.type} | {_cell(family.documentation)} |")
    return [*rows, ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/configuration.md is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date; run: python scripts/gen-config-docs.py",
                  file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
