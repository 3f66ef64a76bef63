"""Run the README's tour and render what each step prints, so the README can show it and a test can check it.

The tour (README section "A short tour") is a sequence of ```bash blocks; a block followed directly by a
```text block shows what its commands print. :func:`run_block` runs a block the way a user would, in a
scratch directory holding a copy of ``data/`` (so ``out/`` and the forecast job's output land there):
``recharge-autoscaler ...`` lines through :func:`controller.cli.main`, ``head -N FILE`` by reading the file.
Progress lines are left out (on a terminal the bar is cleared when the command ends).

Used by ``tests/test_readme.py`` (the shown output must match, numbers aside) and by
``scripts/readme-tour.py`` (which rewrites the shown output after a change).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.tools import REPO_ROOT

README = REPO_ROOT / "README.md"
TOUR = "## A short tour"
PROGRESS = re.compile(r"^(forecast|backtest|forecast-job|plan|simulate|whatif|report) \d+/\d+: ")
BLOCK = re.compile(r"```bash\n(.*?)```\n(?:\n?```text\n(.*?)```\n)?", re.S)


@dataclass(frozen=True)
class Block:
    commands: list[str]  # shell lines, continuations joined, comments dropped
    shown: str | None  # the ```text block after it, if any
    span: tuple[int, int]  # where the text block's body sits in the README (for rewriting)


def tour_blocks(readme: str) -> list[Block]:
    """The bash blocks of the tour section with the output each shows."""
    start = readme.index(TOUR)
    end = readme.index("\n## ", start + len(TOUR))
    out = []
    for m in BLOCK.finditer(readme, start, end):
        lines = re.sub(r"\\\n\s*", " ", m.group(1)).splitlines()
        commands = [ln.split(" #", 1)[0].strip() for ln in lines if ln.strip() and not ln.startswith("#")]
        span = (m.start(2), m.end(2)) if m.group(2) is not None else (m.end(1) + 4, m.end(1) + 4)
        out.append(Block(commands, m.group(2), span))
    return out


def runnable(block: Block) -> bool:
    """Blocks that run on the bundled data alone (``run --config config.yaml`` needs a cluster)."""
    return any("data/" in c for c in block.commands)


@contextlib.contextmanager
def scratch(tmp: Path) -> Iterator[Path]:
    """A working directory with a copy of data/; the previous directory is restored afterwards."""
    shutil.copytree(REPO_ROOT / "data", tmp / "data", dirs_exist_ok=True)
    (tmp / "out").mkdir(exist_ok=True)
    here = Path.cwd()
    os.chdir(tmp)
    try:
        yield tmp
    finally:
        os.chdir(here)


def run_block(block: Block) -> tuple[str, list[int]]:
    """What the block's commands print (stdout, then stderr, progress left out) and their exit codes.

    Run it inside :func:`scratch`.
    """
    from controller.cli import main

    parts: list[str] = []
    codes: list[int] = []
    for command in block.commands:
        argv = shlex.split(command)
        if argv[0] == "head":
            n = int(argv[1].lstrip("-n")) if len(argv) > 2 else 10
            parts.append("".join(Path(argv[-1]).read_text(encoding="utf-8").splitlines(keepends=True)[:n]))
            continue
        assert argv[0] == "recharge-autoscaler", command
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            codes.append(main(argv[1:]))
        errors = "".join(ln for ln in err.getvalue().splitlines(keepends=True) if not PROGRESS.match(ln))
        parts.append(out.getvalue() + errors)
    return "".join(p if p.endswith("\n") or not p else p + "\n" for p in parts), codes


def masked(text: str) -> list[str]:
    """Lines with every number replaced by ``#`` and trailing blanks dropped: the shape, not the values."""
    return [re.sub(r"\d+", "#", ln).rstrip() for ln in text.strip("\n").splitlines()]
