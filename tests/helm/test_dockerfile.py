"""The container image definition, checked without a Docker engine: multi-stage, pinned base, non-root,
no compilers in the runtime stage, pinned dependencies (requirements.lock) covering the runtime closure, and
a build context that carries what the package build needs and nothing else."""

from __future__ import annotations

import configparser
import re
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.tools import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
LOCK = REPO_ROOT / "requirements.lock"
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make ", "clang", "apt-get install")


def _stages() -> list[list[str]]:
    """Instructions per stage (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or (line.startswith("ARG") and not stages):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def _arg(name: str) -> str:
    m = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert m, f"ARG {name} with a default"
    return m.group(1)


def test_base_image_is_a_pinned_slim_python_311() -> None:
    base = _arg("PYTHON_IMAGE")
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base), base


def test_multi_stage_with_a_clean_runtime_stage() -> None:
    stages = _stages()
    assert len(stages) >= 2
    runtime = stages[-1]
    assert runtime[0].split()[-1] == "runtime"
    body = "\n".join(runtime)
    for tool in BUILD_TOOLS:
        assert tool not in body, f"runtime stage mentions {tool!r}"
    assert "from=builder" in body  # wheels come from the builder stage
    assert "--no-index" in body  # nothing is downloaded in the runtime stage


def test_runs_as_uid_10001_with_the_product_entrypoint() -> None:
    runtime = _stages()[-1]
    users = [line for line in runtime if line.startswith("USER ")]
    assert users and users[-1].split()[1].split(":")[0] == "10001"
    assert 'ENTRYPOINT ["recharge-autoscaler"]' in runtime


def test_builder_uses_the_lock_file() -> None:
    builder = "\n".join(_stages()[0])
    assert "requirements.lock" in builder and "pip wheel" in builder


def _runtime_closure() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / "setup.cfg")
    todo = [
        Requirement(r.strip()) for r in cfg["options"]["install_requires"].strip().splitlines() if r.strip()
    ]
    env = {"extra": ""}
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        todo.extend(Requirement(r) for r in metadata.distribution(req.name).requires or [])
    return seen


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_lock_pins_every_runtime_dependency() -> None:
    missing = sorted(_runtime_closure() - set(_pins()))
    assert missing == [], f"requirements.lock lacks {missing}; run scripts/lock-requirements.py"


def test_lock_satisfies_setup_cfg_ranges() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / "setup.cfg")
    pins = _pins()
    for line in cfg["options"]["install_requires"].strip().splitlines():
        req = Requirement(line.strip())
        version = pins[canonicalize_name(req.name)]
        assert req.specifier.contains(version, prereleases=True), f"{req.name}=={version} violates {req}"


def test_build_context_is_an_allow_list() -> None:
    lines = [
        ln.strip()
        for ln in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / "setup.cfg")
    packages = {p.strip().split(".")[0] for p in cfg["options.packages.find"]["include"].split() if p.strip()}
    assert packages | {"pyproject.toml", "setup.cfg", "README.md", "requirements.lock"} <= allowed
    copied = " ".join(ln for ln in _stages()[0] if ln.startswith("COPY"))
    for pkg in packages:
        assert f"COPY {pkg} " in copied, pkg
