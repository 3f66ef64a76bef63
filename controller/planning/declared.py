"""What the operator declared, as plans and replays show it: scaling windows and the availability target.

``plan``, ``simulate``, ``whatif`` and the report all answer two questions the same way. Which declared
windows open in this span, and which intervals did each one set (its ``ScheduledFloor`` or
``ScheduledCap`` readied them)? And with an availability target: what share does the backtest achieve,
what share did the replay achieve, and what does it cost in replica-hours against the fixed-headroom
sizing (``availabilityTarget`` unset)? The answers come from the same ``decide()`` replays
(:func:`controller.planning.plan.build_plan`, the simulator); this module only collects and words them.
Pure: typed inputs, no I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from controller.config import ControllerConfig
from controller.core.schedule import listing
from controller.planning.plan import build_plan
from forecaster.artifact import ForecastArtifact
from forecaster.durations import format_duration

WINDOW_COLUMNS = ["window", "start", "end", "min_replicas", "max_replicas", "requested_from", "intervals_set"]


def window_rows(config: ControllerConfig, start: pd.Timestamp, end: pd.Timestamp,
                frame: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Each opening of the declared windows overlapping ``[start, end)`` (see
    :func:`controller.core.schedule.listing`), with ``intervals_set``: the rows of a plan ``frame`` (columns
    ``ds``, ``window``) inside the opening, lead time included, whose replicas the window set."""
    rows = listing(config, start, end)
    for r in rows:
        r["intervals_set"] = 0
        if frame is not None and len(frame):
            ds = pd.DatetimeIndex(frame["ds"])
            mine = (frame["window"] == r["window"]).to_numpy()
            inside = (ds >= r["requested_from"]) & (ds < r["end"]) & mine
            r["intervals_set"] = int(inside.sum())
    return rows


def describe_windows(config: ControllerConfig, rows: list[dict[str, Any]], *, limit: int = 12) -> list[str]:
    """Text lines: each declared window, then its openings in the span and the intervals each set."""
    if not config.scaling_windows:
        return []
    lead = format_duration(config.window_td)
    out = [f"scaling windows (floor requested {lead} ahead: start-up + warm-up + one loop interval):"]
    for w in config.scaling_windows:
        mine = [r for r in rows if r["window"] == w.name]
        out.append(f"  {w.describe()}: {len(mine)} opening(s) in the span")
        for r in mine[:limit]:
            out.append(f"    {r['start'].isoformat()} .. {r['end'].isoformat()}: set {r['intervals_set']} "
                       "interval(s)")
        if len(mine) > limit:
            out.append(f"    ... {len(mine) - limit} more")
    return out


@dataclass(frozen=True)
class TargetCost:
    """An availability target's backtest share and plan cost against the fixed-headroom sizing."""

    target: float
    backtest_achieved: float | None  # the artifact's cross-validated share at the target (None: no table)
    replica_hours: float  # replicas ready over the plan, at the target
    headroom_hours: float  # the same plan sized by the band and the fixed headroom instead
    headroom: float

    @property
    def extra(self) -> float:
        """Relative replica-hours of the target against the fixed headroom (0.1 = 10% more)."""
        return self.replica_hours / self.headroom_hours - 1.0 if self.headroom_hours > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "extra_replica_hours": self.extra}

    def describe(self) -> str:
        achieved = (
            "no backtest error table (sized on the band and headroom)" if self.backtest_achieved is None
            else f"backtest achieved {self.backtest_achieved:.2%} (each fold judged by the others)"
        )
        return (f"availability target {self.target:.2%}: {achieved}; {self.replica_hours:,.1f} replica-hours "
                f"vs {self.headroom_hours:,.1f} with the fixed headroom {self.headroom:.0%} "
                f"({self.extra:+.1%})")


def plan_hours(frame: pd.DataFrame, forecast: ForecastArtifact) -> float:
    """Replica-hours of the replicas ready in a plan frame."""
    return float(frame["replicas"].sum()) * forecast.interval_seconds / 3600.0


def target_cost(forecast: ForecastArtifact, config: ControllerConfig, frame: pd.DataFrame, *,
                initial_replicas: int | None = None) -> TargetCost | None:
    """The target's cost for a plan ``frame`` made with ``config`` (None without a target): the same
    forecast re-planned with the fixed headroom gives the comparison."""
    target = config.availability_target
    if target is None:
        return None
    fixed, _ = build_plan(forecast, config.evolve(availability_target=None),
                          initial_replicas=initial_replicas)
    table = forecast.error_quantiles
    return TargetCost(
        target=target,
        backtest_achieved=None if table is None else table.achieved(target),
        replica_hours=plan_hours(frame, forecast),
        headroom_hours=plan_hours(fixed, forecast),
        headroom=config.headroom,
    )


def fixed_name(config: ControllerConfig) -> str:
    """Name of the replay sized by the band and the fixed headroom, beside one at the availability target."""
    return f"predictive (headroom {config.headroom:.0%})"


def replay_line(target: float, achieved: float, hours: float, fixed_achieved: float, fixed_hours: float,
                headroom: float) -> str:
    """One line comparing a replay at the target with the same replay at the fixed headroom."""
    extra = hours / fixed_hours - 1.0 if fixed_hours > 0 else 0.0
    verdict = "met" if achieved >= target else "missed"
    return (f"availability target {target:.2%}: {verdict} in replay, {achieved:.2%} of intervals covered at "
            f"{hours:,.1f} replica-hours; fixed headroom {headroom:.0%}: {fixed_achieved:.2%} at "
            f"{fixed_hours:,.1f} ({extra:+.1%} replica-hours for the target)")
