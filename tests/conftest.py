"""Fixtures shared by the whole suite: small history files written on demand, and the bundled sample."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytest_plugins = ["tests.support.kube_envtest", "tests.support.kube_testbed"]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write ``text`` (or ``rows`` under ``header``) to a CSV in tmp_path and return its path."""

    def _write(text: str | None = None, *, name: str = "history.csv", header: str = "timestamp,value",
               rows: list[str] | None = None) -> Path:
        path = tmp_path / name
        if text is None:
            text = "\n".join([header, *(rows or [])]) + "\n"
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture(scope="session")
def nyc_taxi_path() -> Path:
    """The bundled sample history (30-minute NYC taxi passenger counts, 10,320 rows)."""
    return REPO / "data" / "nyc_taxi.csv"
