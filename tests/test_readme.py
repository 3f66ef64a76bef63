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
def test_tour_prints_what_the_readme_shows(tmp_path: Path) -> None:
    """Every tour block that reads bundled data runs (exit 0), writes what it says, and prints what the README
    shows after it, numbers aside (they are masked: the shape, labels, units and n/a must match).
    After a change to a command's output, `scripts/readme-tour.py` rewrites the README."""
    from tests.support.readme_tour import masked, run_block, runnable, scratch, tour_blocks

    blocks = [b for b in tour_blocks(README) if runnable(b)]
    assert len(blocks) >= 7 and all(b.shown for b in blocks)  # each runnable step shows its output
    with scratch(tmp_path):
        for block in blocks:
            printed, codes = run_block(block)
            assert codes and not any(codes), block.commands
            assert masked(printed) == masked(block.shown or ""), (
                f"{block.commands[0]}: the README shows another output; run scripts/readme-tour.py\n{printed}"
            )
    assert (tmp_path / "out" / "plan.csv").stat().st_size > 0
    assert (tmp_path / "out" / "report" / "index.html").stat().st_size > 0
    assert (tmp_path / "out" / "forecast.json").stat().st_size > 0  # the forecast job's artifact
