"""FileStore: atomic writes, validated reads, and the last good forecast surviving every failure."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from forecaster.adapters.store import FileStore
from forecaster.artifact import ForecastArtifact, Interval, QualityNote
from forecaster.errors import StoreError

T0 = pd.Timestamp("2026-11-26T10:00:00Z")


def artifact(peak: float = 130.0, n: int = 4) -> ForecastArtifact:
    intervals = tuple(
        Interval(T0 + pd.Timedelta(hours=i), 100.0 + i, 90.0 + i, 110.0 + i, peak + i) for i in range(n)
    )
    return ForecastArtifact(
        created_at=T0,
        model="seasonal_median",
        timezone="Asia/Jakarta",
        interval_seconds=3600,
        band_level=0.9,
        history_start=T0 - pd.Timedelta(days=28),
        history_end=T0 - pd.Timedelta(hours=1),
        history_points=672,
        source="file data/x.csv",
        horizon_seconds=3600 * n,
        intervals=intervals,
        quality=(QualityNote("gap", "warning", "2 missing intervals"),),
        backtest={"wape": 0.05, "mape": 0.06, "bias": 0.0, "coverage": 0.9, "folds": 4},
    )


def test_round_trip(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "sub" / "forecast.json")
    assert store.read() is None, "nothing stored yet"
    art = artifact()
    store.write(art)
    assert store.read() == art
    assert oct(os.stat(store.path).st_mode & 0o777) == oct(0o644)
    assert [p.name for p in store.path.parent.iterdir()] == ["forecast.json"], "no temp file left behind"


def test_second_write_replaces_the_first(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "forecast.json")
    store.write(artifact(130.0))
    store.write(artifact(150.0))
    got = store.read()
    assert got is not None and got.intervals[0].peak_upper == 150.0


def _fail(*args: object, **kwargs: object) -> None:
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("step", ["fsync", "replace", "chmod"])
def test_failure_midway_keeps_the_previous_forecast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    store = FileStore(tmp_path / "forecast.json")
    good = artifact(130.0)
    store.write(good)
    before = store.path.read_bytes()
    monkeypatch.setattr(os, step, _fail)
    with pytest.raises(StoreError, match=r"No space left on device.*previous forecast was kept"):
        store.write(artifact(999.0))
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert store.read() == good
    assert [p.name for p in tmp_path.iterdir()] == ["forecast.json"], "the temp file was removed"


def test_invalid_artifact_is_refused_before_touching_the_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "forecast.json")
    store.write(artifact())
    before = store.path.read_bytes()
    bad = replace(artifact(), intervals=(Interval(T0, 100.0, 120.0, 110.0, 130.0),))  # lower above yhat
    with pytest.raises(StoreError, match="refusing to write an invalid forecast"):
        store.write(bad)
    assert store.path.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "match"),
    [("{not json", "not valid JSON"), ('{"schema": "other"}', "schema is 'other'"), ("", "not valid JSON")],
    ids=["garbage", "wrong-schema", "empty"],
)
def test_unreadable_file_is_a_store_error_naming_the_path(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "forecast.json"
    path.write_text(content)
    with pytest.raises(StoreError, match=match) as err:
        FileStore(path).read()
    assert str(path) in str(err.value)


def test_unwritable_directory_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create directory"):
        FileStore(blocker / "forecast.json").write(artifact())


def test_temp_files_left_by_a_kill_are_removed_on_the_next_write(tmp_path: Path) -> None:
    """Issue 10, item 13: a kill -9 between write and rename left `.forecast.json.*.tmp` files forever."""
    import os
    import subprocess
    import sys

    from tests.support.tools import REPO_ROOT

    target = tmp_path / "forecast.json"
    code = (
        "import os, signal, sys\n"
        "from forecaster.adapters.store import FileStore\n"
        "from tests.forecaster.adapters.test_store import artifact\n"
        "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
        "FileStore(sys.argv[1]).write(artifact())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(target)], cwd=REPO_ROOT, env={**os.environ,
                          "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".forecast.json.")]
    assert len(left) == 1 and not target.exists()
    others = [tmp_path / ".forecast.json.keep", tmp_path / ".other.json.abcdefgh.tmp", tmp_path / "notes.tmp"]
    for p in others:
        p.write_text("not ours")
    fresh = tmp_path / ".forecast.json.inflight.tmp"  # a concurrent writer's file: too young to touch
    fresh.write_text("{}")
    for p in (*left, *others):
        os.utime(p, (0, 0))  # long ago
    FileStore(target).write(artifact())
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["forecast.json", fresh.name, *(p.name for p in others)])
