"""Declared scaling windows: validation (one line naming the window) and their occurrences in real zones."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from controller.cli import main
from controller.config import parse_controller_config
from controller.windows import ScalingWindow, check_cron, occurrences
from forecaster.errors import ConfigError

W = "controller.scalingWindows"
P = "window 'promo'"

# (id, window fields, message the one line must match exactly up to the end)
BAD: list[tuple[str, dict[str, object], str]] = [
    ("cron-out-of-range", {"start": "0 0 32 * *", "duration": 3600},
     f"{W}.start: {P}: '0 0 32 * *' is not a valid cron expression: a field is out of range"),
    ("cron-malformed", {"start": "0 x * * *", "duration": 3600},
     f"{W}.start: {P}: '0 x * * *' is not a valid cron expression: a field is malformed"),
    ("cron-six-fields", {"start": "0 0 * * * *", "duration": 3600},
     f"{W}.start: {P}: '0 0 * * * *' is not a cron expression: it needs 5 fields"),
    ("cron-never-fires", {"start": "0 0 30 2 *", "duration": 3600},
     f"{W}.start: {P}: '0 0 30 2 *' never fires"),
    ("bad-end-cron", {"start": "0 9 * * *", "end": "0 25 * * *"},
     f"{W}.end: {P}: '0 25 * * *' is not a valid cron expression"),
    ("end-before-start", {"start": "0 9 * * *", "duration": 0},
     f"{W}.duration: {P}: the window ends before it starts: duration must be positive, got 0s"),
    ("negative-duration", {"start": "0 9 * * *", "duration": -60},
     f"{W}.duration: must be between 0s and 366d"),
    ("neither-end-nor-duration", {"start": "0 9 * * *"},
     f"{W}: {P}: give either end (a cron expression) or duration, not neither"),
    ("both-end-and-duration", {"start": "0 9 * * *", "end": "0 17 * * *", "duration": 60},
     f"{W}: {P}: give either end (a cron expression) or duration, not both"),
    ("longer-than-daily-period", {"start": "0 9 * * *", "duration": 25 * 3600},
     f"{W}: {P}: the window is longer than its period: the occurrence from 2026-01-01T09:00:00+00:00 lasts "
     "until 2026-01-02T10:00:00+00:00, after the next start 2026-01-02T09:00:00+00:00"),
    ("end-cron-skips-a-start", {"start": "0 9 * * *", "end": "0 17 * * 1-5"},
     f"{W}: {P}: the window is longer than its period: the occurrence from 2026-01-03T09:00:00+00:00"),
    ("unknown-zone", {"start": "0 9 * * *", "duration": 60, "timezone": "Mars/Olympus"},
     f"{W}.timezone: {P}: unknown timezone 'Mars/Olympus'"),
    ("cap-below-floor", {"start": "0 9 * * *", "duration": 60, "max_replicas": 2},
     f"{W}.maxReplicas: {P}: must be >= minReplicas (5), got 2"),
    ("negative-floor", {"start": "0 9 * * *", "duration": 60, "min_replicas": -1},
     f"{W}.minReplicas: must be >= 0, got -1"),
]


@pytest.mark.parametrize(("fields", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_bad_window_is_one_line_naming_it(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        ScalingWindow(**{"name": "promo", "min_replicas": 5, **fields})  # type: ignore[arg-type]
    text = str(err.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_windows_are_checked_against_the_controller() -> None:
    one = {"name": "a", "start": "0 9 * * *", "duration": "1h", "minReplicas": 3}
    with pytest.raises(ConfigError, match=r"scalingWindows\[0\].name: window 'a' is declared more "):
        parse_controller_config({"capacityPerReplica": 1, "scalingWindows": [one, one]})
    with pytest.raises(ConfigError, match=r"\[0\].minReplicas: window 'a': must be <= maxReplicas \(10\)"):
        parse_controller_config({"capacityPerReplica": 1, "maxReplicas": 10,
                                 "scalingWindows": [{**one, "minReplicas": 30}]})
    with pytest.raises(ConfigError, match=r"\[0\].maxReplicas: window 'a': must be >= minReplicas \(4\)"):
        parse_controller_config({"capacityPerReplica": 1, "minReplicas": 4,
                                 "scalingWindows": [{**one, "minReplicas": 0, "maxReplicas": 3}]})
    with pytest.raises(ConfigError, match=r"scalingWindows\[0\].typo: unknown field"):
        parse_controller_config({"capacityPerReplica": 1, "scalingWindows": [{**one, "typo": 1}]})


def test_target_and_headroom_cannot_both_be_set() -> None:
    with pytest.raises(ConfigError, match=r"controller\.availabilityTarget: set either availabilityTarget or "
                                          r"headroom, not both"):
        parse_controller_config({"capacityPerReplica": 1, "headroom": 0.2, "availabilityTarget": 0.995})
    assert parse_controller_config({"capacityPerReplica": 1, "availabilityTarget": 0.995}).headroom == 0.1
    with pytest.raises(ConfigError, match=r"availabilityTarget: must be in \[0.5, 0.999\], got 0.9999"):
        parse_controller_config({"capacityPerReplica": 1, "availabilityTarget": 0.9999})


def test_a_bad_window_in_the_config_file_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("controller:\n  capacityPerReplica: 1\n  scalingWindows:\n"
                    "    - {name: reset, start: '0 0 1 * *', duration: 40d, minReplicas: 4}\n")
    history = Path(__file__).resolve().parents[2] / "data" / "nyc_taxi_rate.csv"
    code = main(["plan", "--history", str(history), "--config", str(path), "-o", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0
    assert "controller.scalingWindows[0]: window 'reset': the window is longer than its period" in err


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def spans(win: ScalingWindow, start: str, end: str) -> list[tuple[str, str]]:
    tz = win.timezone
    return [(pd.Timestamp(s, tz="UTC").tz_convert(tz).isoformat(), pd.Timestamp(e, tz="UTC").tz_convert(tz)
             .isoformat()) for s, e in occurrences(win.cron, ts(start).value, ts(end).value)]


def test_occurrences_of_a_duration_window_in_its_zone() -> None:
    w = ScalingWindow(name="tv", start="0 20 * * 5", duration=3 * 3600, min_replicas=9,
                      timezone="Asia/Jakarta")
    assert spans(w, "2026-12-03T00:00+07:00", "2026-12-19T00:00+07:00") == [
        ("2026-12-04T20:00:00+07:00", "2026-12-04T23:00:00+07:00"),
        ("2026-12-11T20:00:00+07:00", "2026-12-11T23:00:00+07:00"),
        ("2026-12-18T20:00:00+07:00", "2026-12-18T23:00:00+07:00"),
    ]
    # an occurrence already open at the span's start is included
    assert spans(w, "2026-12-04T22:00+07:00", "2026-12-05T00:00+07:00") == [
        ("2026-12-04T20:00:00+07:00", "2026-12-04T23:00:00+07:00")]


def test_overnight_end_cron_and_daylight_saving() -> None:
    night = ScalingWindow(name="n", start="0 22 * * *", end="0 6 * * *", min_replicas=2,
                          timezone="America/New_York")
    # the fall-back night lasts 9 real hours; the end cron fires at 06:00 local time
    assert spans(night, "2026-10-31T12:00-04:00", "2026-11-01T12:00-05:00") == [
        ("2026-10-31T22:00:00-04:00", "2026-11-01T06:00:00-05:00")]
    early = ScalingWindow(name="e", start="30 1 * * *", duration=3600, min_replicas=2,
                          timezone="America/New_York")
    # 01:30 happens twice on the fall-back day: the window opens once; a duration is elapsed time
    assert spans(early, "2026-11-01T00:00-04:00", "2026-11-02T00:00-05:00") == [
        ("2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00")]
    gap = ScalingWindow(name="g", start="30 2 * * *", duration=600, min_replicas=2,
                        timezone="America/New_York")
    # 02:30 does not exist on the spring-forward day: it opens at the first valid instant after the gap
    assert spans(gap, "2026-03-08T00:00-05:00", "2026-03-08T12:00-04:00") == [
        ("2026-03-08T03:00:00-04:00", "2026-03-08T03:10:00-04:00")]


def test_check_cron_accepts_standard_forms() -> None:
    for expr in ("*/15 * * * *", "0 9 * * MON-FRI", "0 0 1 * *", "0 0 L * *", "5 4 * * sun"):
        check_cron(expr)
