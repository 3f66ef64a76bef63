"""A real Prometheus server for tests, loaded with a known trace through promtool's backfill.

The session fixture :func:`prometheus_server` writes OpenMetrics text from a trace (a slice of the bundled
``data/nyc_taxi.csv`` re-stamped every 5 minutes, with a deliberate one-hour gap and one NaN sample, plus a
two-series metric), turns it into TSDB blocks with ``promtool tsdb create-blocks-from openmetrics``, starts
``prometheus`` on a free loopback port with that storage directory and waits for ``/-/ready``. Tests then read
the trace back through the product and compare. The server has no scrape targets, a 100-year retention (the
samples are from 2014) and a 1-minute lookback delta, so a missing sample is a missing point, not the previous
sample carried forward.

Use it from a test module with ``from tests.support.promserver import prometheus_server  # noqa: F401`` and a
test argument named ``prom``.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import requests

from tests.support.tools import REPO_ROOT, tool_path

STEP_S = 300
START = pd.Timestamp("2014-07-01T00:00:00Z")
POINTS = 3 * 288  # three days of 5-minute samples
GAP = (120, 132)  # sample positions left out (one hour)
NAN_AT = 200  # position written as NaN
METRIC = "recharge_requests_rate"
MULTI_METRIC = "recharge_requests_by_pod"


@dataclass(frozen=True)
class PromServer:
    url: str
    trace: pd.Series  # what was written: NaN at the gap and at the NaN sample
    step: pd.Timedelta
    metric: str = METRIC
    multi_metric: str = MULTI_METRIC


def build_trace() -> pd.Series:
    """The NYC taxi sample re-stamped every 5 minutes; NaN where nothing (or NaN) was written."""
    raw = pd.read_csv(REPO_ROOT / "data" / "nyc_taxi.csv", nrows=POINTS)["value"].astype(float).to_numpy()
    index = pd.date_range(START, periods=POINTS, freq=f"{STEP_S}s", name="ds")
    trace = pd.Series(raw, index=index, name="y")
    trace.iloc[GAP[0] : GAP[1]] = math.nan
    trace.iloc[NAN_AT] = math.nan
    return trace


def openmetrics(trace: pd.Series) -> str:
    lines = [f"# TYPE {METRIC} gauge", f"# HELP {METRIC} Recharge requests per second (test trace)."]
    for pos, (ts, value) in enumerate(trace.items()):
        if GAP[0] <= pos < GAP[1]:
            continue
        text = "NaN" if pos == NAN_AT else repr(float(value))
        lines.append(f"{METRIC} {text} {int(pd.Timestamp(ts).timestamp())}")
    lines.append(f"# TYPE {MULTI_METRIC} gauge")
    for pod in ("recharge-a", "recharge-b"):
        for ts in trace.index[:24]:
            lines.append(f'{MULTI_METRIC}{{pod="{pod}"}} 1.0 {int(pd.Timestamp(ts).timestamp())}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _find_tools() -> tuple[str, str]:
    prom, promtool = tool_path("prometheus"), tool_path("promtool")
    if prom and promtool:
        return prom, promtool
    message = "prometheus/promtool not installed; run `bash scripts/install-test-tools.sh` (make test does)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session", name="prom")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromServer]:
    prom, promtool = _find_tools()
    root = tmp_path_factory.mktemp("prometheus")
    trace = build_trace()
    om = root / "trace.om"
    om.write_text(openmetrics(trace), encoding="utf-8")
    data = root / "data"
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(om), str(data)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    config = root / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n", encoding="utf-8")
    port = _free_port()
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            prom,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=100y",
            f"--web.listen-address=127.0.0.1:{port}",
            "--query.lookback-delta=1m",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited with {proc.returncode}: "
                    f"{Path(log.name).read_text(errors='replace')[-2000:]}"
                )
            try:
                if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus did not become ready within 60s")
            time.sleep(0.2)
        yield PromServer(url=url, trace=trace, step=pd.Timedelta(seconds=STEP_S))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
