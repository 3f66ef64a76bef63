"""The single-series ``forecast`` path starts light: it must not import the job's or the controller's clients.

Each ``recharge-autoscaler forecast`` call pays its imports; requests, apscheduler and the Kubernetes client
cost a few hundred milliseconds and are never used there (issue 12's start-up budget).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller import cli

HEAVY = ("requests", "apscheduler", "kubernetes", "prophet", "statsmodels", "prometheus_client", "matplotlib")


def test_forecast_imports_no_clients(tmp_path: Path) -> None:
    idx = pd.date_range("2026-01-01", periods=21 * 24, freq="h")
    y = 100 + 50 * np.sin(np.arange(len(idx)) / 24 * 2 * np.pi)
    pd.DataFrame({"ds": idx, "y": y}).to_csv(tmp_path / "h.csv", index=False)
    code = (
        "import sys\n"
        "from controller.cli import main\n"
        f"rc = main(['forecast', '--history', {str(tmp_path / 'h.csv')!r}, "
        f"'-o', {str(tmp_path / 'f.csv')!r}, '-q'])\n"
        f"print(rc, sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0 []", out.stdout + out.stderr
    assert len(pd.read_csv(tmp_path / "f.csv")) == 24


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["forecast", "--history", "x"], "forecast"),
        (["--log-level", "DEBUG", "backtest"], "backtest"),
        (["--log-json", "simulate", "--trace", "x"], "simulate"),
        (["--help"], None),
    ],
    ids=["plain", "after-log-level", "after-flag", "none"],
)
def test_command_is_found_after_root_options(argv: list[str], expected: str | None) -> None:
    assert cli._command(argv) == expected


def test_every_registered_command_is_mapped_to_its_module() -> None:
    full = cli.build_parser()
    sub = next(a for a in full._actions if a.dest == "command")
    assert set(sub.choices) == set(cli.COMMAND_MODULES)
    for command, module in cli.COMMAND_MODULES.items():
        one = cli.build_parser(command)
        only = next(a for a in one._actions if a.dest == "command")
        assert command in only.choices, (command, module)
