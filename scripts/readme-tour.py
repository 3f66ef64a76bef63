#!/usr/bin/env python3
"""Rewrite the output the README's tour shows, by running the tour (tests/support/readme_tour.py).

Run after changing what a tour command prints; tests/test_readme.py fails until the README matches again.

    .venv/bin/python scripts/readme-tour.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.readme_tour import README, runnable, scratch, tour_blocks


def main() -> int:
    text = README.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp, scratch(Path(tmp)):
        from tests.support.readme_tour import run_block

        # From the end, so the spans of earlier blocks stay valid while later ones are replaced.
        for block in reversed(tour_blocks(text)):
            if not runnable(block) or block.shown is None:
                continue
            shown, codes = run_block(block)
            if any(codes):
                print(f"failed ({codes}): {block.commands}", file=sys.stderr)
                return 1
            a, b = block.span
            text = text[:a] + shown + text[b:]
    README.write_text(text, encoding="utf-8")
    print(f"rewrote the tour output in {README.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
