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

import pandas as pd

from controller.cli.args import (
    CLUSTER_FLAGS,
    add_calendar_arguments,
    add_controller_arguments,
    add_history_arguments,
    calendar_from_args,
    check_initial_replicas,
    controller_config,
    cost_label,
    load_clean_history,
    parse_target,
    price_from_args,
)
from controller.cli.progress import Progress
from controller.planning.plan import forecast_after
from controller.planning.warmups import WarmupCount
from controller.planning.whatif import (
    Plan,
    Scenario,
    capacity_plan,
    outside_horizon,
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
    p.add_argument("--details", action="store_true",
                   help="also list every scale-up, every risk window and the replicas per hour")
    p.add_argument("--baseline-availability-target", default=None, metavar="SHARE",
                   help="the baseline's availability target, e.g. 99.5%% (or 'off': the band and headroom); "
                        "with --availability-target 99.9%% this asks what 99.9%% costs against 99.5%% "
                        "(default: the config's, or the scenario's without --config)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--quiet", "-q", action="store_true", help="do not print progress on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    growth = parse_growth(args.growth)
    events = tuple(parse_event(e, timezone=args.timezone) for e in args.event)
    if args.quota_tps is not None and not args.quota_tps > 0:
        raise UserError(f"--quota-tps must be > 0 requests per second, got {args.quota_tps:g}")
    check_initial_replicas(args)
    scen_cfg = controller_config(args)
    base_cfg = controller_config(args, ignore=CLUSTER_FLAGS) if args.config else scen_cfg
    if args.baseline_availability_target is not None:
        text = args.baseline_availability_target.strip().lower()
        target = None if text == "off" else parse_target(text, what="--baseline-availability-target")
        base_cfg = base_cfg.evolve(availability_target=target)
    horizon = parse_duration(args.horizon, what="--horizon")
    price = price_from_args(args)
    opts: dict[str, Any] = {
        "quota_tps": args.quota_tps,
        "price_per_replica_hour": price,
        "initial_replicas": args.initial_replicas,
    }
    with Progress("whatif", stages=3, enabled=not args.quiet) as progress:
        artifact = forecast_artifact(args, horizon, progress)
        for ev in outside_horizon(events, artifact):
            end = artifact.intervals[-1].ds + pd.Timedelta(seconds=artifact.interval_seconds)
            raise UserError(
                f"--event {ev.text!r}: lies outside the planned horizon "
                f"{artifact.intervals[0].ds.isoformat()} to {end.isoformat()} and would change nothing; "
                "move it or lengthen --horizon"
            )
        progress.stage("replaying decide() for the baseline")
        base = capacity_plan(artifact, base_cfg, progress=progress.step, **opts)
        progress.stage("replaying decide() for the scenario")
        scen_art = scenario_artifact(artifact, Scenario("scenario", growth, events))
        scen = capacity_plan(scen_art, scen_cfg, scenario="scenario", progress=progress.step, **opts)
    if args.json:
        doc = {"baseline": plan_doc(base), "scenario": plan_doc(scen), "growth": growth,
               "events": [e.text for e in events], "currency": args.currency}
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_comparison(base, scen, details=args.details, cost=cost_label(args)))
    return 0


def forecast_artifact(args: argparse.Namespace, horizon: Any, progress: Progress) -> ForecastArtifact:
    """The forecast after ``--history``, made as ``plan`` makes it (same loader, calendar and creation)."""
    series = load_clean_history(args)
    source = f"file:{args.history}"
    calendar = calendar_from_args(args)
    progress.stage("forecasting (backtesting the models)")
    return forecast_after(
        series, horizon, model=args.model, calendar=calendar, source=source, progress=progress
    )[1]


def _when(iso: str) -> str:
    """``'2015-02-01T06:28:30-05:00'`` -> ``'Sun 2015-02-01 06:28:30'`` (the plan's own zone)."""
    t = pd.Timestamp(iso)
    return t.strftime("%a %Y-%m-%d %H:%M:%S" if t.second else "%a %Y-%m-%d %H:%M")


def format_comparison(base: Plan, scen: Plan, *, details: bool = False, cost: str = "cost") -> str:
    """The baseline and the scenario side by side; with ``details``, every scale-up and replicas per hour.

    Rows about a quota appear only when one was given; cost reads n/a without a price.
    """
    def cost_text(v: Any) -> str:
        return "n/a" if v is None else f"{v:,.2f}"

    rows: list[tuple[str, str, Any]] = [
        ("peak demand (req/s, forecast)", "peak_demand", "{:,.1f}".format),
        ("peak upper band (req/s)", "peak_upper", "{:,.1f}".format),
        ("peak at", "peak_at", _when),
        ("replicas needed at peak", "max_replicas_needed", str),
        ("most replicas planned", "max_replicas_planned", str),
        ("hours capped at max replicas", "hours_at_max", "{:.1f}".format),
        ("hours short below max", "hours_short", "{:.1f}".format),
    ]
    if base.summary.get("quota_tps") is not None:
        rows.append((f"hours over quota {base.summary['quota_tps']:g} req/s", "hours_over_quota",
                     "{:.1f}".format))
    if {base.summary["availability_target"], scen.summary["availability_target"]} != {"off"}:
        rows += [("availability target", "availability_target", str),
                 ("backtest share covered at target", "backtest_achieved", str)]
    rows += [
        ("replica-hours", "replica_hours", "{:,.1f}".format),
        (cost, "cost", cost_text),
        ("scale-ups", "scale_ups", str),
        ("warm-ups", "warmups", str),
        ("lead time (start-up + warm-up)", "lead", str),
    ]
    w = max(len(r[0]) for r in rows)
    cells = [(label, fmt(base.summary[key]), fmt(scen.summary[key])) for label, key, fmt in rows]
    cw = max(12, *(len(c) for _, a, b in cells for c in (a, b)))
    out = [f"{'':{w}}  {'baseline':>{cw}}  {'scenario':>{cw}}"]
    out += [f"{label:{w}}  {a:>{cw}}  {b:>{cw}}" for label, a, b in cells]
    shown = None if details else 10
    for plan in (base, scen) if base.summary["windows"] != scen.summary["windows"] else (scen,):
        if plan.summary["windows"]:
            out.append(f"\nDeclared {plan.summary['windows'][0].rstrip(':')} ({plan.scenario}):")
            out.extend(plan.summary["windows"][1:])
    for plan in (base, scen):
        if plan.risks:
            out.append(f"\nRisk windows ({plan.scenario}): {len(plan.risks)}")
            for r in plan.risks[:shown]:
                if r["kind"] == "quota":
                    what = f"peak {r['peak_rate']:,.1f} req/s > quota {r['limit']:g}"
                else:
                    where = "at max" if r["kind"] == "max_replicas" else "below max"
                    what = (f"needs {r['replicas_needed']}, {r['replicas_ready']} ready ({where} "
                            f"{r['limit']}; {r['reason']})")
                out.append(f"  {_when(r['start'])} .. {_when(r['end'])}  {what}")
            if shown is not None and len(plan.risks) > shown:
                out.append(f"  ... {len(plan.risks) - shown} more (--details lists them)")
    by = scen.summary["warmups_by_reason"]
    out.append(f"\nScenario warm-ups: {count_text(by)}.")
    out.append(f"Scale-ups are requested {scen.summary['lead']} (the lead) before they are needed, earlier "
               "under a rate limit or a ramp.")
    if scen.schedule:
        first = scen.schedule[0]
        out.append(f"First scenario scale-up: request {_when(first['request_at'])} for {first['from']} -> "
                   f"{first['to']} replicas needed {_when(first['needed_at'])}.")
    if not details:
        out.append("--details lists every scale-up and the replicas per hour; --json gives everything.")
        return "\n".join(out) + "\n"
    out.append("\nScenario scale-ups (request at -> needed at, ahead: replicas):")
    for x in scen.schedule:
        out.append(f"  {_when(x['request_at'])} -> {_when(x['needed_at'])}, {x['ahead']:>6}: "
                   f"{x['from']} -> {x['to']}")
    out.append("\nScenario replicas per hour:")
    for _, h in scen.hourly.iterrows():
        out.append(f"  {_when(h['ds'].isoformat())}  {int(h['replicas']):>4}  (need {int(h['need'])}, "
                   f"peak {h['peak_rate']:,.1f} req/s)")
    return "\n".join(out) + "\n"


def count_text(by_reason: dict[str, int]) -> str:
    """``{"ramp": 3, "event": 0, "new_replicas": 10}`` -> ``'13 (3 ramp, 10 new replicas)'``."""
    return WarmupCount(by_reason["ramp"], by_reason["event"], by_reason["new_replicas"],
                       by_reason.get("window", 0)).describe()
