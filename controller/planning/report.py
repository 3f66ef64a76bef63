"""The capacity report (``report``): a self-contained HTML page plus the CSVs behind every number.

An SRE or capacity planner opening ``index.html`` should be able to act on it: the next week's peak and the
replicas it needs (with the range the forecast band implies), whether max replicas or a quota is hit, when
scale-ups are requested, what it costs, what growth or a promotion would do, how high weekly and monthly
peaks may go as far ahead as the history supports, how good the forecast has been, and how the predictive
controller compares with an HPA, a cron schedule, the physical limit and (given a replicas history) the
replicas actually run. The page has no scripts and loads nothing from the network; charts are inline SVG.
Each table on the page is rendered from the same rounded frame written to its CSV; long lists (every
scale-up and warm-up) are in CSVs, summarised per day on the page.

The replica plan, its scale-ups, warm-ups, risks, cost and every scenario come from the controller's own
decision core replayed through the forecast (:func:`controller.planning.whatif.capacity_plan` over
:func:`controller.planning.plan.build_plan`), so the page shows what the controller will do, not an estimate
of it. Tables are built in :mod:`controller.planning.report_tables`, the long-range outlook in
:mod:`controller.planning.outlook`, charts in :mod:`controller.planning.report_charts`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from controller.config import ControllerConfig
from controller.planning import report_tables as tables
from controller.planning.declared import WINDOW_COLUMNS, TargetCost, fixed_name, replay_line, target_cost
from controller.planning.outlook import peak_outlook
from controller.planning.report_html import Card, Section, render
from controller.planning.warmups import WHY_NONE, WHY_OFF, count_warmups
from controller.planning.whatif import (
    SCHEDULE_COLUMNS,
    WARMUP_COLUMNS,
    EventWindow,
    Plan,
    Scenario,
    capacity_plan,
    scenario_artifact,
)
from forecaster.artifact import ForecastArtifact
from forecaster.durations import format_duration

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ReportOptions:
    """What the page is about besides the forecast: money, limits, zone, scenarios."""

    timezone: str
    source: str
    price: float | None = None  # per replica-hour; None: costs read n/a
    currency: str = ""
    quota: float | None = None  # req/s
    scenarios: tuple[Scenario, ...] = ()

    @property
    def cost(self) -> str:
        return f"cost ({self.currency})" if self.currency else "cost"


@dataclass
class SimReport:
    """A replay of recent history through the policies (see :func:`simulate_recent`)."""

    table: pd.DataFrame  # compare() of the results, indexed by policy
    timelines: dict[str, pd.DataFrame]
    interval: pd.Timedelta
    warms: dict[str, bool]  # policy -> makes warm-up calls at all
    notes: list[str] = field(default_factory=list)


def simulate_recent(
    rate: pd.Series,
    cfg: ControllerConfig,
    params: Any,
    span: pd.Timedelta,
    *,
    calendar: Any,
    model: str,
    timezone: str,
    where: str,
    replicas: pd.Series | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> SimReport | None:
    """Replay the last ``span`` through predictive, reactive (HPA), cron and oracle, and measure the replicas
    actually run when ``replicas`` (a history of counts) is given.

    ``params`` are the :class:`~controller.planning.simulate.SimParams` of the cluster; the predictive
    policy refits ``model`` daily; the cron schedule is the peak need per local hour of the history before
    the window. None when the history is too short to leave a day before the window.
    """
    from controller.planning.policies import CronPolicy, OraclePolicy, ReactivePolicy, cron_from_history
    from controller.planning.predictive import PredictivePolicy
    from controller.planning.refits import pipeline_forecaster, shared
    from controller.planning.simulate import Policy, compare, make_trace, replay_recorded, simulate

    start = rate.index[-1] - span
    if start <= rate.index[0] + pd.Timedelta(days=1):
        return None
    window, before = rate[rate.index > start], rate[rate.index <= start]
    trace = make_trace(window, where=where)
    fc = shared(pipeline_forecaster(model, timezone, calendar=calendar))
    policies: list[Policy] = [PredictivePolicy(config=cfg, history=rate, forecaster=fc)]
    if cfg.availability_target is not None:  # the same replay sized by the fixed headroom, for its cost
        fixed = cfg.evolve(availability_target=None)
        policies.append(PredictivePolicy(config=fixed, history=rate, forecaster=fc, name=fixed_name(cfg)))
    policies += [
        ReactivePolicy(),
        CronPolicy(hourly=cron_from_history(before, params, timezone),
                   windows=cfg if cfg.scaling_windows else None),
        OraclePolicy(),
    ]
    results = []
    for n, policy in enumerate(policies, start=1):
        if progress is not None:
            progress(policy.name, n, len(policies))
            if isinstance(policy, PredictivePolicy):
                policy.progress = lambda done, total: progress("predictive", done, total)
        results.append(simulate(trace, policy, params))
    if replicas is not None:
        results.append(replay_recorded(trace, replicas, params, where="--replicas-history"))
    table = compare(results)
    notes = [f"{r.policy}: {n}" for r in results for n in r.notes]
    if cfg.availability_target is not None:
        p, f = results[0], results[1]
        notes.insert(0, replay_line(cfg.availability_target, p.availability, p.metrics.replica_hours,
                                    f.availability, f.metrics.replica_hours, cfg.headroom))
    silent = [r.policy for r in results if not r.issues_warmups and not r.policy.startswith("predictive")]
    if silent:
        notes.append(f"warm-ups: {', '.join(silent)} show '-': {WHY_NONE}")
    if not cfg.warmup.enabled:
        notes.append(f"warm-ups: predictive shows '-': {WHY_OFF}")
    return SimReport(
        table, {r.policy: r.frame() for r in results if r.policy != fixed_name(cfg)}, trace.interval,
        {r.policy: r.issues_warmups for r in results}, notes,
    )


def default_scenarios(forecast: ForecastArtifact) -> tuple[Scenario, ...]:
    """Growth +25%, and a promotion doubling traffic for 6 h centred on the forecast peak."""
    frame = forecast.frame()
    i = int(np.argmax(frame["peak_upper"].to_numpy(dtype=float)))
    step = pd.Timedelta(seconds=forecast.interval_seconds)
    first = pd.Timestamp(frame["ds"].iloc[0])
    start = max(first, pd.Timestamp(frame["ds"].iloc[i]) - pd.Timedelta(hours=3)).floor(step)
    promo = EventWindow(start, start + pd.Timedelta(hours=6), 2.0, f"{start.isoformat()}/6h x2")
    return (
        Scenario("growth +25%", growth=0.25),
        Scenario(f"promotion x2 for 6h from {start:%a %H:%M}", events=(promo,)),
    )


def _outage_spans(series: Any, since: pd.Timestamp) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Runs of intervals the cleaning flagged as outages (excluded from fitting), from ``since`` on."""
    outage = getattr(series, "outage", None)
    if outage is None or not len(outage):
        return []
    mask = outage.to_numpy(dtype=bool)
    idx = pd.DatetimeIndex(outage.index)
    step = series.freq
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    spans = [(idx[a], idx[b - 1] + step) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    return [(a, b) for a, b in spans if b > since]


def build_report(
    out: Path,
    *,
    rate: pd.Series,
    result: Any,
    artifact: ForecastArtifact,
    cfg: ControllerConfig,
    options: ReportOptions,
    series: Any = None,
    sim: SimReport | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Write the CSVs and index.html into ``out``; return the frames written (by CSV name).

    The replica plan and every scenario are the controller's own decide() replays on ``artifact``.
    ``progress(what, done, total)`` is told about each replay.
    """
    from controller.planning import report_charts as charts

    def tick(what: str) -> Progress | None:
        return None if progress is None else (lambda done, total: progress(what, done, total))

    o, tz = options, options.timezone
    fc = result.frame.reset_index(drop=True)
    freq: pd.Timedelta = result.freq
    plan = capacity_plan(artifact, cfg, quota_tps=o.quota, price_per_replica_hour=o.price,
                         progress=tick("replica plan"))
    scen_plans: list[tuple[str, Plan]] = [("baseline (the plan above)", plan)]
    for sc in o.scenarios:
        scen_plans.append((sc.name, capacity_plan(
            scenario_artifact(artifact, sc), cfg, scenario=sc.name, quota_tps=o.quota,
            price_per_replica_hour=o.price, progress=tick(f"scenario {sc.name}"),
        )))
    cap, lo = float(cfg.capacity_per_replica), int(cfg.min_replicas)
    band_low = np.array([tables.need_of(v, cap, lo) for v in plan.frame["yhat_lower"]])
    y = series.y if series is not None else rate
    outlooks = [peak_outlook(y, p, timezone=tz, band_level=result.band_level, capacity_per_replica=cap,
                             min_replicas=lo) for p in ("week", "month")]

    csv: dict[str, pd.DataFrame] = {}
    csv["history.csv"] = pd.DataFrame({"ds": rate.index, "rate": rate.to_numpy()})
    value_cols = ("yhat", "yhat_lower", "yhat_upper", "peak_upper")
    csv["forecast.csv"] = fc[["ds", *value_cols]].round(dict.fromkeys(value_cols, 3))
    events = result.events if isinstance(result.events, pd.DataFrame) else pd.DataFrame()
    csv["events.csv"] = events.reset_index(drop=True)
    rounded = {c: plan.frame[c].round(3) for c in value_cols}
    csv["plan.csv"] = plan.frame.assign(**rounded, replica_hours=plan.frame["replica_hours"].round(4),
                                        band_low_need=band_low)
    csv["scaleups.csv"] = pd.DataFrame(plan.schedule, columns=SCHEDULE_COLUMNS)
    csv["warmups.csv"] = pd.DataFrame(plan.warmups, columns=WARMUP_COLUMNS)
    csv["days.csv"] = tables.daily_summary(plan, freq, tz, o.price, cap, lo, o.cost)
    csv["risks.csv"] = tables.risks(plan, tz)
    csv["scenarios.csv"] = tables.scenarios(scen_plans, o.price, o.cost)
    csv["outlook_weekly.csv"] = outlooks[0].table
    csv["outlook_monthly.csv"] = outlooks[1].table
    csv["cost.csv"] = tables.cost_outlook(plan, freq, o.price, o.currency)
    csv["quality.csv"] = tables.quality(result)
    windows = pd.DataFrame(plan.windows, columns=WINDOW_COLUMNS)
    windows["max_replicas"] = windows["max_replicas"].astype("Int64")  # "" when a window has no cap
    if cfg.scaling_windows:
        csv["windows.csv"] = windows
    if sim is not None:
        csv["simulation.csv"] = tables.simulation(sim.table, o.price, o.cost, sim.warms)
    for name, frame in csv.items():
        write_csv(frame, out / name)

    horizon = format_duration(freq * len(fc))
    cards = _cards(plan, band_low, cfg, o, horizon)
    cost = target_cost(artifact, cfg, plan.frame)
    cards += _target_cards(cost)
    sections = [
        Section(
            "Forecast",
            f"Model {result.model}; band {result.band_level:.0%}; interval {format_duration(freq)}. The "
            "dashed line is the upper band of the peak rate inside each interval, which capacity covers. "
            "Hatched spans are outages the cleaning excluded, so the models never learned them as demand.",
            charts=[("Requests per second: the last 14 days and the forecast", charts.forecast_chart(
                rate[rate.index > rate.index[-1] - pd.Timedelta(days=14)], fc, events, result.band_level, tz,
                _outage_spans(series, rate.index[-1] - pd.Timedelta(days=14)),
            ))],
            tables=[("Declared and calendar events", csv["events.csv"], "events.csv")] if len(events) else [],
        ),
        _plan_section(plan, cfg, csv, tz, charts.plan_chart(plan.frame, cfg.max_replicas, tz, band_low),
                      cost),
        *([Section(
            "Declared scaling windows",
            "Each opening of `controller.scalingWindows` in the horizon: at least min_replicas (at most "
            "max_replicas) while open, requested from requested_from (start-up + warm-up + one loop interval "
            "ahead) so the replicas are ready and warm at the start; intervals_set counts the plan's "
            "intervals whose replicas the window set (ScheduledFloor / ScheduledCap).",
            tables=[("Window openings", windows, "windows.csv")] if len(windows) else [],
            bullets=[] if len(windows) else [f"No window opens in the next {horizon}."],
        )] if cfg.scaling_windows else []),
        Section(
            "Risks",
            "Windows where the replicas ready fall short of the need at max replicas or below it (a rate "
            "limit held the scale-up back)" + (", or the forecast exceeds the quota." if o.quota else "."),
            tables=[("Risk windows", csv["risks.csv"], "risks.csv")] if len(plan.risks) else [],
            bullets=[] if len(plan.risks) else [f"No risk windows in the next {horizon}."],
        ),
        Section(
            "Scenarios",
            "The same decide() replayed on the forecast scaled by each scenario (the what-if engine of "
            "`recharge-autoscaler whatif`); --growth and --event add your own.",
            tables=[("Baseline and scenarios", csv["scenarios.csv"], "scenarios.csv")],
        ),
        _outlook_section(outlooks, csv, charts.outlook_chart(outlooks)),
        Section("Cost outlook", "" if o.price is not None else
                "No --price-per-replica-hour given: costs read n/a.",
                tables=[("Cost", csv["cost.csv"], "cost.csv")]),
        Section(
            "Forecast quality",
            "Rolling-origin backtest, in percent (WAPE: sum |error| / sum actual; bias: sum error / sum "
            "actual; band coverage: share of actuals inside the band, to compare with the band level). "
            "Best model first; the chosen model or blend on top.",
            tables=[("Backtest", csv["quality.csv"], "quality.csv")],
        ),
    ]
    if sim is not None:
        sections.append(_sim_section(sim, cfg, csv, charts.simulation_chart(
            sim.timelines, cap, tz, sim.interval)))
    notes = [f"{n.severity}: {n.message}" for n in getattr(result, "notes", ())]
    if notes:
        sections.append(Section("Data quality notes", bullets=notes))
    subtitle = (
        f"{o.source}: history {rate.index[0]:%Y-%m-%d %H:%M} to {rate.index[-1]:%Y-%m-%d %H:%M}; forecast "
        f"{pd.Timestamp(fc['ds'].iloc[0]):%Y-%m-%d %H:%M} + {horizon} ({tz}); capacity "
        f"{cap:g} req/s per replica, {cfg.min_replicas}-{cfg.max_replicas} replicas"
    )
    (out / "index.html").write_text(render("Recharge capacity report", subtitle, cards, sections), "utf-8")
    return csv


def _cards(
    plan: Plan, band_low: np.ndarray, cfg: ControllerConfig, o: ReportOptions, horizon: str
) -> list[Card]:
    s = plan.summary
    i = int(np.argmax(plan.frame["need"].to_numpy()))
    warm = count_warmups(w["reason"] for w in plan.warmups)
    cards = [
        Card("peak forecast (req/s)", f"{tables.r(s['peak_demand'])}"),
        Card("peak upper band (req/s)", f"{tables.r(s['peak_upper'])}"),
        Card("peak at", pd.Timestamp(s["peak_at"]).tz_convert(o.timezone).strftime("%a %d %b %H:%M")),
        Card("replicas needed at peak", str(s["max_replicas_needed"]),
             "bad" if s["max_replicas_needed"] > cfg.ceiling else ""),
        Card("replicas the band implies at peak", f"{int(band_low[i])}-{s['max_replicas_needed']}"),
        Card("hours capped at max replicas", f"{tables.r(s['hours_at_max'])}",
             "bad" if s["hours_at_max"] else ""),
        Card(f"{o.cost} over {horizon}", str(tables.money(s["cost"]))),
        Card(f"warm-ups over {horizon}", str(warm.total)),
    ]
    if o.quota is not None:
        cards.append(Card(f"hours over quota {o.quota:g} req/s", f"{tables.r(s['hours_over_quota'])}",
                          "bad" if s["hours_over_quota"] else ""))
    return cards


def _target_cards(cost: TargetCost | None) -> list[Card]:
    """The availability target, the share the backtest covered at it, and its cost against the headroom."""
    if cost is None:
        return []
    shown = "-" if cost.backtest_achieved is None else f"{cost.backtest_achieved:.2%}"
    short = cost.backtest_achieved is None or cost.backtest_achieved < cost.target
    return [
        Card(f"availability target {cost.target:.2%}: backtest share covered", shown, "bad" if short else ""),
        Card(f"replica-hours vs fixed headroom {cost.headroom:.0%}", f"{cost.extra:+.1%}"),
    ]


def _plan_section(
    plan: Plan, cfg: ControllerConfig, csv: dict[str, pd.DataFrame], tz: str, chart: str,
    cost: TargetCost | None = None,
) -> Section:
    first = plan.schedule[0] if plan.schedule else None
    warm = count_warmups(w["reason"] for w in plan.warmups)
    bullets = [f"Warm-ups: {warm.describe()}: one per warm-up call decide() issues (ramp ahead, event "
               "ahead, or new replicas ready)."]
    if first is not None:
        at = pd.Timestamp(first["request_at"]).tz_convert(tz)
        bullets.insert(0, f"First scale-up: requested {at:%a %H:%M:%S} for {first['from']} -> {first['to']} "
                       f"replicas needed at {pd.Timestamp(first['needed_at']).tz_convert(tz):%H:%M}.")
    startup = format_duration(pd.Timedelta(seconds=float(cfg.startup)))
    warmup = format_duration(pd.Timedelta(seconds=float(cfg.warmup_time)))
    sizing = (f"its peak upper band, or its mean + {cfg.headroom:.0%} headroom if more" if cost is None else
              f"its rate at the {cost.target:.2%} availability target (the backtest's error quantile at its "
              f"lead time; {cost.describe()})")
    return Section(
        "Replica plan",
        f"Replicas ready and warm in each interval, from the controller's own decide() replayed through the "
        f"forecast (as `recharge-autoscaler plan`): each interval needs {sizing}, at "
        f"{cfg.capacity_per_replica:g} req/s per replica, between "
        f"{cfg.min_replicas} and {cfg.max_replicas}; scale-ups are requested {format_duration(cfg.lead)} "
        f"ahead (start-up {startup} + warm-up {warmup}). The shaded range is what the forecast band implies: "
        "from the replicas its lower band needs to those its peak upper band needs.",
        charts=[("Replicas per interval", chart)],
        tables=[("Day by day (local time)", csv["days.csv"], "days.csv")],
        bullets=bullets,
        links=[("every interval of the plan", "plan.csv"), ("every scale-up", "scaleups.csv"),
               ("every warm-up", "warmups.csv")],
    )


def _outlook_section(outlooks: list[Any], csv: dict[str, pd.DataFrame], chart: str) -> Section:
    names = {"week": "outlook_weekly.csv", "month": "outlook_monthly.csv"}
    tabs = [(f"{'Weekly' if o.period == 'week' else 'Monthly'} peaks ahead", csv[names[o.period]],
             names[o.period]) for o in outlooks if len(o.table)]
    return Section(
        "Weekly and monthly peaks ahead",
        "Peaks of past weeks and months of the cleaned history, projected as far ahead as the history "
        "supports, with the band and the replicas it implies (peaks of the history's own interval; the "
        "replica plan above sizes on the burstier peak inside each interval).",
        charts=[("Observed and projected peaks", chart)],
        tables=tabs,
        bullets=[f"{'Weekly' if o.period == 'week' else 'Monthly'}: {o.note}" for o in outlooks],
    )


def _sim_section(sim: SimReport, cfg: ControllerConfig, csv: dict[str, pd.DataFrame], chart: str) -> Section:
    as_run = "as run" in sim.timelines
    return Section(
        "Simulated comparison on recent history",
        "The same decide() the controller runs, replayed with daily-refitted forecasts made only from "
        "earlier data, against a Kubernetes HPA (reactive), a cron schedule (the peak need per local hour "
        "of the earlier history) and the oracle (perfect foresight, the physical limit)"
        + (", and the replicas actually run (--replicas-history)." if as_run else "."),
        charts=[("Demand and ready capacity per interval", chart)],
        tables=[("Policies", csv["simulation.csv"], "simulation.csv")],
        bullets=list(sim.notes),
    )


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """A report CSV: tz-aware times as ISO 8601 with their offset, no index."""
    f = frame.copy()
    for c in f.columns:
        if isinstance(f[c].dtype, pd.DatetimeTZDtype):
            f[c] = f[c].map(lambda t: t.isoformat())
    f.to_csv(path, index=False)
