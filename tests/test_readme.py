"""The README's example configuration is one the product accepts, and its tour commands parse."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from controller.cli import build_parser
from controller.configfile import load_controller_config
from forecaster.job.config import load_job_config
from tests.support.tools import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_full_example_config_is_accepted(tmp_path: Path) -> None:
    section = README[README.index("A full example for production") :]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "config.yaml"
    path.write_text(block, encoding="utf-8")
    job = load_job_config(path)
    assert job.source.kind == "prometheus"
    assert job.store.kind == "configmap"
    controller = load_controller_config(path)
    controller.check_runnable()
    assert controller.capacity_per_replica == 120


def _tour_commands() -> list[str]:
    text = re.sub(r"\\\n\s*", " ", README)
    return [
        line.strip()
        for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)
        for line in block.splitlines()
        if line.strip().startswith("recharge-autoscaler ")
    ]


@pytest.mark.parametrize("command", _tour_commands())
def test_tour_command_parses(command: str) -> None:
    args = shlex.split(command.split("#", 1)[0])[1:]
    parsed = build_parser().parse_args(args)
    assert callable(parsed.func)


@pytest.mark.slow
def test_tour_runs_on_the_bundled_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every tour command that reads bundled data runs to completion (exit 0) and writes what it says."""
    from controller.cli import main

    monkeypatch.chdir(REPO_ROOT)
    out = tmp_path / "out"
    out.mkdir()
    for command in _tour_commands():
        args = shlex.split(command.split("#", 1)[0])[1:]
        if not any(a.startswith("data/") for a in args) or "--config" in args:
            continue  # needs a cluster or the user's own files; the sample job writes under the repository
        args = [a.replace("out/", f"{out}/") for a in args]
        assert main(args) == 0, f"{command}\n{capsys.readouterr().err}"
    assert (out / "plan.csv").stat().st_size > 0
    assert (out / "report" / "index.html").stat().st_size > 0
