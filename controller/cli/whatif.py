"""``recharge-autoscaler whatif``: flags in, baseline and scenario plans (planning.whatif) out.

With ``--config``, the replica flags (capacity, start-up, warm-up, limits, headroom) change the scenario
only; the baseline keeps the config file's values, so "what if start-up doubles" compares against the
cluster as configured. Without ``--config`` both plans use the flags, and the baseline is what ``plan``
writes for the same history and flags.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from controller.cli.args import (
    CLUSTER_FLAGS,
    add_calendar_arguments,
    add_controller_arguments,
    add_history_arguments,
    calendar_from_args,
    check_initial_replicas,
    controller_config,
    load_clean_history,
)
from controller.planning.plan import forecast_after
from controller.planning.whatif import (
    Scenario,
    capacity_plan,
    format_comparison,
    parse_event,
    parse_growth,
    plan_doc,
    scenario_artifact,
)
from forecaster.artifact import ForecastArtifact
from forecaster.durations import parse_duration
from forecaster.errors import UserError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "whatif",
        help="capacity plan under growth, event and cluster scenarios, against the baseline",
        description="Forecast the history, apply scenarios and compare the controller's plan (the decide() "
        "replay of `plan`) with the baseline. With --config, --capacity-per-replica/--startup/--warmup-time/"
        "--min-replicas/--max-replicas/--headroom change the scenario only (the baseline keeps the config's "
        "values).",
    )
    add_history_arguments(p, timezone_default=None)
    add_controller_arguments(p, price=True)
    add_calendar_arguments(p)
    p.add_argument("--growth", default="0%", help="traffic growth applied to the whole forecast, e.g. 20%%")
    p.add_argument(
        "--event",
        action="append",
        default=[],
        metavar="'START/DURATION xFACTOR'",
        help="multiplicative event window, e.g. '2026-12-01T00:00+07:00/6h x3' (repeatable)",
    )
    p.add_argument(
        "--quota-tps",
        type=float,
        default=None,
        help="downstream quota in requests per second; windows above it are reported as risks",
    )
    p.add_argument("--horizon", default="24h", metavar="DURATION",
                   help="how far ahead to plan (default 24h, as `plan`)")
    p.add_argument("--model", default="auto", help="forecasting model alias (default: auto)")
    p.add_argument("--initial-replicas", type=int, default=None, metavar="N",
                   help="replicas running when the horizon starts (default: what the first decision needs)")
    p.add_argument("--no-warmup", action="store_true", help="do not plan cache warm-ups (as `plan`)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    growth = parse_growth(args.growth)
    events = tuple(parse_event(e, timezone=args.timezone) for e in args.event)
    if args.quota_tps is not None and not args.quota_tps > 0:
        raise UserError(f"--quota-tps must be > 0 requests per second, got {args.quota_tps:g}")
    check_initial_replicas(args)
    scen_cfg = controller_config(args)
    base_cfg = controller_config(args, ignore=CLUSTER_FLAGS) if args.config else scen_cfg
    horizon = parse_duration(args.horizon, what="--horizon")
    artifact = forecast_artifact(args, horizon)
    opts: dict[str, Any] = {
        "quota_tps": args.quota_tps,
        "price_per_replica_hour": args.price_per_replica_hour,
        "initial_replicas": args.initial_replicas,
    }
    base = capacity_plan(artifact, base_cfg, **opts)
    scen_art = scenario_artifact(artifact, Scenario("scenario", growth, events))
    scen = capacity_plan(scen_art, scen_cfg, scenario="scenario", **opts)
    if args.json:
        doc = {"baseline": plan_doc(base), "scenario": plan_doc(scen), "growth": growth,
               "events": [e.text for e in events]}
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_comparison(base, scen))
    return 0


def forecast_artifact(args: argparse.Namespace, horizon: Any) -> ForecastArtifact:
    """The forecast after ``--history``, made as ``plan`` makes it (same loader, calendar and creation)."""
    series = load_clean_history(args)
    source = f"file:{args.history}"
    calendar = calendar_from_args(args)
    return forecast_after(series, horizon, model=args.model, calendar=calendar, source=source)[1]
