"""Temporary files of our own naming that a killed process left behind, found and removed on the next write.

Every output the product replaces atomically (the forecast file, ``forecast``/``plan`` CSVs, the report's
staging directory) is first written as ``.<name>.<8 random characters>.tmp`` next to it and renamed. A
``kill -9`` between the write and the rename leaves that file forever (issue 10, item 13), so each writer
calls :func:`remove_stale` before it writes: entries matching exactly that pattern for its own ``name``,
older than ``older_than`` seconds (so a concurrent writer's file in flight is left alone), are deleted.
Nothing else in the directory is ever touched.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

STALE_AFTER = 60.0
"""Seconds after which one of our temporary files is certainly abandoned (a write takes milliseconds)."""


def pattern(name: str) -> re.Pattern[str]:
    """The names :func:`tempfile.mkstemp`/``mkdtemp`` give with prefix ``.<name>.`` and suffix ``.tmp``."""
    return re.compile(rf"^\.{re.escape(name)}\.[A-Za-z0-9_]{{8}}\.tmp$")


def remove_stale(
    directory: str | os.PathLike[str], name: str, *, older_than: float = STALE_AFTER
) -> list[Path]:
    """Delete our abandoned temporary files (or staging directories) for ``name`` in ``directory``."""
    removed: list[Path] = []
    match = pattern(name).match
    cutoff = time.time() - older_than
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if not match(entry.name):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime > cutoff:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError as exc:
            log.warning("could not remove the stale temporary file %s (%s)", entry.path, exc)
            continue
        removed.append(Path(entry.path))
        log.info("removed %s, left behind by an interrupted write", entry.path)
    return removed


def write_staged(out: Path, build: Callable[[Path], object]) -> None:
    """``build(directory)`` in a staging directory next to ``out``, then its files moved into ``out`` one by
    one, the page last: a report that fails midway never leaves a mix of new and previous files."""
    remove_stale(out.parent, out.name)  # a staging directory a killed run left behind
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        build(staging)
        for f in sorted(staging.iterdir(), key=lambda p: p.name == "index.html"):
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
