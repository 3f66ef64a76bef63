"""``recharge-autoscaler report --fleet SCALERS.yaml --history-dir DIR``: one capacity report for a fleet.

What an SRE has for a fleet is the scalers themselves (``kubectl get predictivescalers -A -o yaml``: each
spec holds the service's capacity per replica, min/max, behavior and calendar) and an export of each
service's traffic history (the spec's ``history.query`` run against Prometheus). So the input is that YAML
(a ``List``, one object or several documents; other kinds are ignored) and a directory of history files,
one per scaler: ``DIR/<namespace>/<name>.csv`` (or ``.parquet``), else ``DIR/<name>.csv``. The history
flags (``--timezone``, ``--counts``, the column names) apply to every file.

Each spec is validated as the fleet controller validates it (:func:`controller.fleet.spec.parse_spec`, then
:func:`~controller.fleet.spec.controller_config`), each history is forecast as ``plan`` and ``report`` do
(:func:`controller.planning.plan.forecast_after`, with the scaler's own calendar), and
:func:`controller.planning.report_fleet.build_fleet_report` writes the page. A scaler that cannot be planned
(invalid spec, no history file, a history that cannot be forecast) is listed under "Not included" and on
stderr, the others are still reported, and the command exits 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from controller.cli.args import history_spec, price_from_args
from controller.cli.progress import Progress
from forecaster.durations import parse_duration
from forecaster.errors import AutoscalerError, UserError

EXTENSIONS = (".csv", ".csv.gz", ".parquet")
SINGLE_ONLY = {  # flags of the single-service report that a fleet takes from each scaler's spec, or lacks
    "config": "--config", "capacity_per_replica": "--capacity-per-replica", "startup": "--startup",
    "warmup_time": "--warmup-time", "min_replicas": "--min-replicas", "max_replicas": "--max-replicas",
    "headroom": "--headroom", "replicas_history": "--replicas-history", "quota_tps": "--quota-tps",
    "growth": "--growth", "event": "--event", "history": "--history",
}


def read_scalers(path: str) -> list[tuple[str, str, Any]]:
    """(namespace, name, spec mapping) of every PredictiveScaler in the YAML file ``path``."""
    import yaml

    from controller.fleet.spec import GROUP, KIND

    try:
        docs = list(yaml.safe_load_all(Path(path).read_text(encoding="utf-8")))
    except OSError as exc:
        raise UserError(f"--fleet {path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"--fleet {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    objects: list[Any] = []
    for doc in docs:
        if isinstance(doc, dict) and isinstance(doc.get("items"), list):
            objects.extend(doc["items"])
        elif doc is not None:
            objects.append(doc)
    out = []
    for obj in objects:
        if not (isinstance(obj, dict) and obj.get("kind") == KIND
                and str(obj.get("apiVersion", "")).startswith(f"{GROUP}/")):
            continue
        meta = obj.get("metadata") or {}
        if not meta.get("name"):
            raise UserError(f"--fleet {path}: a {KIND} has no metadata.name")
        out.append((str(meta.get("namespace") or "default"), str(meta["name"]), obj.get("spec")))
    if not out:
        raise UserError(f"--fleet {path}: no {KIND} found (expected `kubectl get predictivescalers -A -o "
                        "yaml` output, or PredictiveScaler documents)")
    return out


def history_file(directory: Path, namespace: str, name: str) -> Path:
    """The scaler's history file in ``directory`` (see the module docstring); UserError naming the paths."""
    tried = [directory / namespace / name, directory / name]
    for stem in tried:
        for ext in EXTENSIONS:
            candidate = stem.with_name(stem.name + ext)
            if candidate.is_file():
                return candidate
    raise UserError(f"no history file: looked for {tried[0]}.csv|.parquet and {tried[1]}.csv|.parquet")


def _plan_one(args: argparse.Namespace, ns: str, name: str, raw_spec: Any, horizon: Any,
              progress: Progress) -> Any:
    from dataclasses import replace

    from controller.fleet.spec import controller_config, parse_spec
    from controller.planning.plan import forecast_after
    from controller.planning.report_fleet import FleetService
    from forecaster.series.calendar import EventCalendar
    from forecaster.series.load import load_series

    spec = parse_spec(raw_spec)
    cfg = controller_config(spec, namespace=ns)
    path = history_file(Path(args.history_dir), ns, name)
    hist = replace(history_spec(args), path=str(path))
    series = load_series(hist)
    calendar = EventCalendar(spec.calendar, hist.timezone)
    _, artifact = forecast_after(series, horizon, model=args.model, calendar=calendar,
                                 source=f"file:{path}", progress=progress)
    return FleetService(ns, name, cfg, artifact, source=str(path))


def run_fleet(args: argparse.Namespace) -> int:
    from controller.planning.report_fleet import FleetOptions, build_fleet_report
    from forecaster.tempfiles import write_staged

    given = [flag for dest, flag in SINGLE_ONLY.items() if getattr(args, dest, None)]
    if given:
        raise UserError(f"{given[0]}: not used with --fleet (each scaler's spec and history file give it)")
    if not args.history_dir:
        raise UserError("--history-dir: required with --fleet (a directory with one history file per "
                        "scaler: <namespace>/<name>.csv or <name>.csv)")
    if not Path(args.history_dir).is_dir():
        raise UserError(f"--history-dir {args.history_dir}: not a directory")
    price = price_from_args(args)
    horizon = parse_duration(args.horizon, what="--horizon")
    scalers = read_scalers(args.fleet)
    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--output {out}: cannot create the directory ({exc.strerror})") from None
    services, skipped = [], []
    with Progress("report --fleet", stages=2, enabled=not args.quiet) as progress:
        progress.stage(f"forecasting {len(scalers)} services")
        for n, (ns, name, raw_spec) in enumerate(scalers, start=1):
            progress.step(n - 1, len(scalers), f"{ns}/{name}")
            try:
                services.append(_plan_one(args, ns, name, raw_spec, horizon, progress))
            except AutoscalerError as exc:  # one scaler's fault: reported, the others planned
                skipped.append((f"{ns}/{name}", str(exc)))
        if not services:
            raise UserError(f"--fleet {args.fleet}: no scaler could be planned; {skipped[0][0]}: "
                            f"{skipped[0][1]}")
        progress.stage("replaying decide() for every service; drawing")
        options = FleetOptions(timezone=history_spec(args).timezone, source=args.fleet, price=price,
                               currency=(args.currency or "").strip(), skipped=tuple(skipped))
        write_staged(out, lambda staging: build_fleet_report(
            staging, services, options, progress=lambda done, total: progress.step(done, total, "plans")))
    for who, why in skipped:
        print(f"error: {who}: {why}", file=sys.stderr)
    print(f"fleet report written to {out / 'index.html'}: {len(services)} services"
          + (f", {len(skipped)} not included" if skipped else ""))
    return 1 if skipped else 0
