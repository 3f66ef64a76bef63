"""What every benchmark script shares: where the development traces are and how a result section is written.

Each script owns one ``## ...`` section of docs/benchmarks.md and rewrites only that section.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
# The development traces live beside the repository (../shared/data/traces); RECHARGE_TRACES overrides.
TRACES = Path(os.environ.get("RECHARGE_TRACES") or ROOT.parent / "shared" / "data" / "traces")


def write_section(text: str, section: str, doc: Path = DOC) -> None:
    """Replace ``section`` (heading and body) in ``doc`` with ``text``, or append it; the rest is kept."""
    doc.parent.mkdir(parents=True, exist_ok=True)
    old = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    body = text.rstrip("\n") + "\n\n"
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: body, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + body
    doc.write_text(new.rstrip("\n") + "\n", encoding="utf-8")


def checkout(root: Path) -> str:
    """``root``'s commit as ``abc1234 (subject)``, so a section names the baseline it was measured against."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%h (%s)"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"`{root}` (not a git checkout)"
    subject = out.split(" (", 1)
    if len(subject) == 2 and len(subject[1]) > 80:
        out = f"{subject[0]} ({subject[1][:77].rstrip()}...)"
    return f"commit {out}"


def compile_bytecode(*roots: Path | None) -> None:
    """Compile each checkout's packages to bytecode, as ``pip install`` does for an installed package
    (``None``, an absent baseline, is skipped).

    Timed commands then measure what a user's start-up costs: an editable checkout under
    ``PYTHONDONTWRITEBYTECODE`` (set in some CI images) would otherwise recompile every module per start.
    """
    for root in roots:
        if root is None:
            continue
        packages = [name for name in ("forecaster", "controller") if (root / name).is_dir()]
        command = [sys.executable, "-m", "compileall", "-q", *packages]
        subprocess.run(command, cwd=root, check=True, timeout=600)
