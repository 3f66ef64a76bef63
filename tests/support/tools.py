"""Where the test suite finds external command-line tools (helm, kubectl, prometheus, promtool, chromium).

``scripts/install-test-tools.sh`` (run by ``make test``) extracts pinned helm and kubectl binaries into
``.tools/bin`` and installs the Debian packages; tests ask :func:`tool_path` instead of guessing ``$PATH``
so a developer's own (possibly different) helm never changes what the suite checks.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"


def tool_path(name: str) -> str | None:
    """Absolute path of tool ``name``: ``.tools/bin/<name>`` first, then ``$PATH``; None when absent."""
    local = TOOLS_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def require_tool(name: str) -> str:
    """Like :func:`tool_path` but fails the test with the command that installs the tool."""
    path = tool_path(name)
    if path is None:
        import pytest

        pytest.fail(f"{name} not found in {TOOLS_BIN} or $PATH; run `bash scripts/install-test-tools.sh`")
    return path
