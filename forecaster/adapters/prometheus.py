"""Read request-rate history (and the live rate) from Prometheus over its HTTP API.

The forecast job reads weeks of history with ``/api/v1/query_range``; the controller reads the current rate
with ``/api/v1/query``. Prometheus refuses range queries with more than 11,000 points per series, so a long
window is split into chunks on one step-aligned grid and merged back without duplicated or dropped
boundaries. Missing samples stay missing (NaN on the regular grid), never zeros: a model must not learn an
outage as a quiet night. Counter resets are left to PromQL (``rate()``/``increase()``).

The connection settings (:class:`PrometheusConfig`) live in :mod:`forecaster.adapters.prometheus_config`.
Transport concerns live here: bearer tokens and basic-auth passwords read from files (re-read when the
file changes, so rotated Kubernetes tokens are picked up), a custom CA bundle, TLS verification on by
default, timeouts, and bounded retries with exponential backoff and jitter for 5xx, timeouts and connection
errors only. Secrets never reach a log line or an error message.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import requests

from forecaster import budget
from forecaster.adapters import redirects
from forecaster.adapters.deadline import install, total_deadline
from forecaster.adapters.prometheus_config import PrometheusConfig
from forecaster.adapters.prometheus_config import safe_url as _safe_url
from forecaster.durations import format_duration
from forecaster.errors import ConfigError, SourceError
from forecaster.redact import redact, remember

log = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class SourceReport:
    """What the last history read saw, for logs, quality notes and job metrics."""

    points: int  # finite samples returned
    expected: int  # grid points in the window
    missing: int  # grid points with no sample (gaps)
    non_finite: int  # NaN/+Inf/-Inf samples, turned into missing
    requests: int
    warnings: tuple[str, ...] = ()
    labels: str = "{}"


class _SecretFile:
    """A small secret read from a file, re-read whenever the file's mtime or size changes."""

    def __init__(self, path: str, what: str) -> None:
        self.path = path
        self.what = what
        self._stamp: tuple[int, int] | None = None
        self._value = ""

    def value(self) -> str:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                with open(self.path, encoding="utf-8") as fh:
                    self._value = fh.read().strip()
                self._stamp = stamp
        except OSError as exc:
            raise ConfigError(f"{self.what}: cannot read {self.path} ({exc.strerror})") from None
        if not self._value:
            raise ConfigError(f"{self.what}: {self.path} is empty")
        remember(self._value)  # redacted from every log line and error from now on
        return self._value


class PrometheusSource:
    """History and live values from one PromQL expression; implements ``forecaster.ports.HistorySource``."""

    def __init__(
        self,
        cfg: PrometheusConfig,
        session: requests.Session | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.cfg = cfg
        self._session = redirects.same_host_only(install(session or requests.Session()))
        self._sleep = sleep
        self._jitter = jitter
        self._token = (
            _SecretFile(cfg.bearer_token_file, "source.prometheus.bearerTokenFile")
            if cfg.bearer_token_file
            else None
        )
        self._password = (
            _SecretFile(cfg.basic_auth.password_file, "source.prometheus.basicAuth.passwordFile")
            if cfg.basic_auth
            else None
        )
        self._base = cfg.url.rstrip("/")
        remember(urlsplit(cfg.url).password, *cfg.headers.values())
        self.last_report: SourceReport | None = None
        if cfg.insecure_skip_verify:
            log.warning(
                "TLS certificate verification is disabled for %s (insecureSkipVerify)", _safe_url(cfg.url)
            )

    def describe(self) -> str:
        return f"prometheus {_safe_url(self._base)}: {self.cfg.query}"

    # -- public API ------------------------------------------------------------------------------------------

    def history(self, start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta | None = None) -> pd.Series:
        """Samples of the query on the step grid from ``start`` to ``end`` (both inclusive, UTC).

        The grid is aligned to multiples of ``step`` since the epoch, so consecutive runs and chunks agree on
        the stamps. Grid points without a sample are NaN. Raises SourceError when the query returns no
        samples at all, several series, or a non-matrix result.
        """
        if not self.cfg.query:
            raise ConfigError("source.prometheus.query: required to read history")
        step_s = round(pd.Timedelta(step).total_seconds()) if step is not None else int(self.cfg.step)
        if step_s <= 0:
            raise ConfigError("source.prometheus.step: must be at least 1s")
        t0 = math.ceil(_epoch(start) / step_s) * step_s
        t1 = math.floor(_epoch(end) / step_s) * step_s
        if t1 < t0:
            raise SourceError(
                f"{self.describe()}: empty window {_iso(start)} .. {_iso(end)} at step {step_s}s"
            )
        grid = pd.DatetimeIndex(pd.to_datetime(range(t0, t1 + step_s, step_s), unit="s", utc=True), name="ds")
        per = self.cfg.max_points_per_request
        values: dict[int, float] = {}
        labelsets: list[dict[str, str]] = []
        warnings: list[str] = []
        non_finite = 0
        requests_made = 0
        chunk_start = t0
        while chunk_start <= t1:
            chunk_end = min(t1, chunk_start + (per - 1) * step_s)
            params = {"query": self.cfg.query, "start": str(chunk_start), "end": str(chunk_end),
                      "step": str(step_s)}  # fmt: skip
            body = self._get("/api/v1/query_range", params)
            requests_made += 1
            warnings.extend(str(w) for w in body.get("warnings") or [])
            data = body.get("data") or {}
            if data.get("resultType") != "matrix":
                raise SourceError(
                    f"{self.describe()}: expected a range vector (matrix), got "
                    f"{data.get('resultType')!r}; the query must return an instant vector"
                )
            try:
                for series in data.get("result") or []:
                    metric = {str(k): str(v) for k, v in (series.get("metric") or {}).items()}
                    if metric not in labelsets:
                        labelsets.append(metric)
                    for ts, raw in series.get("values") or []:
                        v, t = _float(raw), round(float(ts))
                        if t < chunk_start or t > chunk_end or (t - t0) % step_s:
                            continue  # a server off our grid: never let it duplicate a boundary
                        if not math.isfinite(v):
                            non_finite += 1
                            continue
                        values[t] = v
            except (AttributeError, TypeError, ValueError) as exc:
                raise SourceError(f"{self.describe()}: malformed range query result ({exc})") from None
            chunk_start = chunk_end + step_s
        if len(labelsets) > 1:
            raise SourceError(_many_series(self.describe(), labelsets))
        for w in warnings:
            log.warning("Prometheus warning for %s: %s", self.describe(), w)
        if not values:
            raise SourceError(
                f"{self.describe()}: no samples between {_iso(grid[0])} and {_iso(grid[-1])}"
                + (f" ({non_finite} NaN/Inf samples)" if non_finite else "")
                + "; check the query in the Prometheus UI and the history window"
            )
        out = pd.Series([values.get(t, math.nan) for t in range(t0, t1 + step_s, step_s)], index=grid,
                        name="y", dtype=float)  # fmt: skip
        missing = int(out.isna().sum())
        self.last_report = SourceReport(points=len(values), expected=len(grid), missing=missing,
                                        non_finite=non_finite, requests=requests_made,
                                        warnings=tuple(warnings), labels=_labels(labelsets[0]))  # fmt: skip
        if non_finite:
            log.warning("%s: %d NaN/Inf samples treated as missing", self.describe(), non_finite)
        if missing:
            log.info(
                "%s: %d of %d intervals have no sample (kept as gaps)", self.describe(), missing, len(grid)
            )
        return out

    def instant(self, query: str, at: pd.Timestamp) -> float:
        """The value of ``query`` at ``at``: exactly one finite sample, else SourceError."""
        body = self._get("/api/v1/query", {"query": query, "time": f"{_epoch(at):.3f}"})
        for w in body.get("warnings") or []:
            log.warning("Prometheus warning for %s: %s", query, w)
        data = body.get("data") or {}
        kind = data.get("resultType")
        result = data.get("result")
        where = f"prometheus {_safe_url(self._base)}: {query}"
        if kind == "scalar":
            value = _float(result[1]) if isinstance(result, list) and len(result) == 2 else math.nan
        elif kind == "vector":
            result = result or []
            if not result:
                raise SourceError(f"{where}: returned no series at {_iso(at)}")
            try:
                if len(result) > 1:
                    raise SourceError(_many_series(where, [dict(r.get("metric") or {}) for r in result]))
                value = _float(result[0].get("value", [0, "NaN"])[1])
            except (AttributeError, IndexError, TypeError, ValueError) as exc:
                raise SourceError(f"{where}: malformed instant query result ({exc})") from None
        else:
            raise SourceError(f"{where}: expected an instant vector or scalar, got {kind!r}")
        if not math.isfinite(value):
            raise SourceError(f"{where}: value at {_iso(at)} is {value}, not a finite number")
        return value

    # -- transport ------------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", **self.cfg.headers}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.value()}"
        return headers

    def _secrets(self) -> list[str]:
        out = [v for v in self.cfg.headers.values() if len(v) >= 4]
        url_password = urlsplit(self.cfg.url).password
        if url_password:
            out.append(url_password)
        for s in (self._token, self._password):
            if s is not None and s._value:
                out.append(s._value)
        return out

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets())

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        cfg = self.cfg
        url = self._base + path
        params = {**params, "timeout": f"{max(1, math.ceil(cfg.timeout))}s"}
        verify: bool | str = False if cfg.insecure_skip_verify else (cfg.ca_file or True)
        auth = (
            (cfg.basic_auth.username, self._password.value()) if cfg.basic_auth and self._password else None
        )
        attempts = cfg.retries + 1
        last = ""
        for attempt in range(attempts):
            if attempt:
                delay = min(cfg.max_backoff, cfg.backoff * 2 ** (attempt - 1))
                delay = budget.cap(delay / 2 + delay / 2 * self._jitter())
                log.warning("%s: %s; retry %d/%d in %.1fs", _safe_url(url), last, attempt, cfg.retries, delay)
                self._sleep(delay)
            total = budget.cap(float(cfg.timeout))  # never past the forecast run's own deadline
            if total <= 0:
                why = f"{last}; " if last else ""
                raise SourceError(
                    f"{_safe_url(url)}: {why}the run's time budget (schedule.runTimeout) is used up; the "
                    "last good forecast is kept"
                )
            try:
                with total_deadline(total, what=_safe_url(url)):
                    resp = self._session.get(
                        url,
                        params=params,
                        headers=self._headers(),
                        auth=auth,
                        verify=verify,
                        timeout=(min(cfg.connect_timeout, total), total),
                    )
            except requests.exceptions.SSLError as exc:
                raise SourceError(
                    f"{_safe_url(url)}: TLS error ({self._redact(_short(exc))}); "
                    "set source.prometheus.caFile to the CA bundle that signs the server"
                ) from None
            except requests.exceptions.Timeout:
                last = f"timed out after {format_duration(pd.Timedelta(seconds=total))}"
                continue
            except requests.exceptions.ConnectionError as exc:
                last = f"connection failed ({self._redact(_short(exc))})"
                continue
            except requests.exceptions.RequestException as exc:
                raise SourceError(f"{_safe_url(url)}: request failed ({self._redact(_short(exc))})") from None
            if resp.status_code in _RETRY_STATUS:
                last = f"HTTP {resp.status_code}{self._error_detail(resp)}"
                continue
            if redirects.is_redirect(resp):  # only a redirect to another host gets here (not followed)
                raise SourceError(
                    f"{_safe_url(url)}: {redirects.describe(resp)} not followed (another host must not get "
                    "the credentials and headers); set source.prometheus.url to the address that answers"
                )
            if resp.status_code >= 400:
                hint = "; check bearerTokenFile/basicAuth" if resp.status_code in (401, 403) else ""
                raise SourceError(
                    f"{_safe_url(url)}: HTTP {resp.status_code}{self._error_detail(resp)}{hint}"
                )
            try:
                body = resp.json()
            except ValueError:
                raise SourceError(
                    f"{_safe_url(url)}: response is not JSON (HTTP {resp.status_code}); "
                    "is source.prometheus.url the Prometheus API base URL?"
                ) from None
            if not isinstance(body, dict):
                raise SourceError(f"{_safe_url(url)}: unexpected response body")
            if body.get("status") != "success":
                raise SourceError(
                    f"{_safe_url(url)}: query failed: {self._error_detail(resp, body).lstrip(' :')}"
                )
            return body
        raise SourceError(f"{_safe_url(url)}: {last} (gave up after {attempts} attempts)")

    def _error_detail(self, resp: requests.Response, body: Any = None) -> str:
        if body is None:
            try:
                body = resp.json()
            except ValueError:
                text = " ".join(resp.text.split())[:200]
                return f": {self._redact(text)}" if text else ""
        if isinstance(body, dict) and (body.get("errorType") or body.get("error")):
            return self._redact(f": {body.get('errorType', 'error')}: {body.get('error', '')}")
        return ""


def _many_series(where: str, labelsets: list[dict[str, str]]) -> str:
    shown = ", ".join(_labels(m) for m in labelsets[:3])
    more = f" and {len(labelsets) - 3} more" if len(labelsets) > 3 else ""
    return (
        f"{where}: returned {len(labelsets)} series ({shown}{more}) where one is expected; "
        "aggregate them, e.g. sum(<query>) or sum by () (<query>)"
    )


def _labels(metric: Mapping[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def _float(raw: Any) -> float:
    try:
        return float(raw)  # Prometheus sends "NaN", "+Inf", "-Inf" as strings; float() reads them
    except (TypeError, ValueError):
        return math.nan


def _epoch(ts: pd.Timestamp) -> float:
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    return t.timestamp()


def _iso(ts: pd.Timestamp) -> str:
    t = pd.Timestamp(ts)
    return (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")).isoformat()


def _short(exc: BaseException) -> str:
    """A one-line reason from a requests exception, without the nested urllib3 repr noise."""
    reason = exc.args[0] if exc.args else exc
    text = str(getattr(reason, "reason", reason))
    for marker in ("Failed to establish a new connection: ", "Caused by "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return " ".join(text.split()).rstrip(")'\"")[:200] or type(exc).__name__
