#!/usr/bin/env python3
"""Generate docs/configuration.md from the config models, so the reference never drifts from the code.

Each entry of SECTIONS names a top-level YAML key and the model that reads it; the table rows come from
:func:`forecaster.configschema.describe_fields`, i.e. from each field's ``Field(description=...)``, its unit
(``json_schema_extra={"unit": ...}``), its allowed range and its default. To document a new section, add
a line to SECTIONS and re-run:

    .venv/bin/python scripts/gen-config-docs.py            # rewrite docs/configuration.md
    .venv/bin/python scripts/gen-config-docs.py --check    # exit 1 if the file is out of date (CI)
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.config import ControllerConfig, FleetConfig  # noqa: E402
from controller.fleet.spec import ScalerSpec  # noqa: E402
from forecaster.configschema import describe_fields  # noqa: E402
from forecaster.job.config import (  # noqa: E402
    ForecastConfig,
    LoggingConfig,
    MetricsConfig,
    ScheduleConfig,
    SourceConfig,
    StoreConfig,
)

OUTPUT = ROOT / "docs" / "configuration.md"

SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("source", SourceConfig),
    ("forecast", ForecastConfig),
    ("store", StoreConfig),
    ("schedule", ScheduleConfig),
    ("metrics", MetricsConfig),
    ("logging", LoggingConfig),
    ("controller", ControllerConfig),
    ("fleet", FleetConfig),
    ("spec", ScalerSpec),
]

INTRO = """\
# Configuration reference

One YAML file configures the forecast job (`recharge-autoscaler forecast-job --config FILE`) and the
controller (`controller` section). The whole file is validated whenever a command reads it (`forecast-job`,
`run`, and `plan`/`simulate`/`whatif`/`report` with `--config`): an unknown key, a key given twice, a wrong
type or an out-of-range value stops the command (exit 2) with one line naming the field, e.g.
`config.yaml: source.prometheus.step: cannot parse '5 minutes'; use a number with a unit ...` or
`config.yaml: controller.maxReplica: unknown field; did you mean maxReplicas? ...`.

- Keys are camelCase. Durations are written `30s`, `5m`, `2h`, `7d` or a number of seconds; each has an
  allowed range (below), so a value such as `1000000d` is refused when the file is read.
- Relative paths are resolved against the directory of the config file.
- Secret file paths can be overridden by environment variables: `RECHARGE_PROMETHEUS_BEARER_TOKEN_FILE`,
  `RECHARGE_PROMETHEUS_PASSWORD_FILE`, `RECHARGE_PROMETHEUS_CA_FILE`. Prometheus takes one credential:
  a `user:password@` in the url, `basicAuth`, `bearerTokenFile` or an `Authorization` header, not two.
- A complete example is `data/sample-config.yaml` (what `make run` uses).

This page is generated from the config models by `scripts/gen-config-docs.py`; edit the field
documentation in the code.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    out = [INTRO]
    for key, model in SECTIONS:
        summary = (inspect.getdoc(model) or "").split("\n\n")[0].replace("\n", " ")
        out.append(f"## `{key}`\n\n{summary}\n")
        out.append("| key | type | default | description |")
        out.append("|---|---|---|---|")
        for row in describe_fields(model, f"{key}."):
            name = f"**`{row.key}`**" if row.section else f"`{row.key}`"
            default = f"`{row.default}`" if row.section and row.default else row.default
            cells = [name, _cell(row.type), _cell(default), _cell(row.description)]
            out.append(" ".join(["|", " | ".join(cells), "|"]).replace("|  |", "| |"))
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
            print(
                f"{OUTPUT.relative_to(ROOT)} is out of date; run: python scripts/gen-config-docs.py",
                file=sys.stderr,
            )
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
