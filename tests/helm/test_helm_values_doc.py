"""docs/helm-values.md is generated from values.yaml and stays in sync; every value in values.yaml is
documented by a ``# --`` comment (on the value itself or on the mapping that contains it)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from typing import Any

import pytest
import yaml

from tests.helm.chartlib import CHART
from tests.support.tools import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "helm-values-doc.py"


def _doc_module() -> Any:
    spec = importlib.util.spec_from_file_location("helm_values_doc", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _leaves(data: Any, prefix: str = "") -> list[str]:
    if isinstance(data, dict) and data:
        return [leaf for k, v in data.items() for leaf in _leaves(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def test_values_page_is_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def test_every_value_is_documented() -> None:
    text = (CHART / "values.yaml").read_text()
    documented = {key for key, desc in _doc_module().documented_keys(text) if desc}
    undocumented = [
        leaf
        for leaf in _leaves(yaml.safe_load(text))
        if not any(leaf == d or leaf.startswith(d + ".") for d in documented)
    ]
    assert undocumented == []


def test_documented_keys_exist_in_values() -> None:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    module = _doc_module()
    for key, _ in module.documented_keys(text):
        module.lookup(values, key)  # KeyError names a comment attached to the wrong key


def _description(key: str) -> str:
    text = (CHART / "values.yaml").read_text()
    return " ".join(dict(_doc_module().documented_keys(text))[key].split())


@pytest.mark.parametrize(
    ("key", "must", "must_not"),
    [
        # controller/core/behavior.py: tolerance only damps scale-downs; scale-ups always go ahead
        ("controller.tolerance", ["scale-down", "Scale-ups always go ahead"], ["Ignore changes"]),
        # controller/cli/run.py + loop.py: a dry run logs instead of writing Events, and takes no Lease
        ("controller.dryRun", ["never change the target, write Events, take the Lease"], ["(events,"]),
        ("networkPolicy.warmupEgressTo", ["controller.warmup.url"], []),
        # controller/cli/fleet_job.py: --dask-scheduler is a flag of `forecast-job --fleet`; the Dask workers
        # run the product's own code (forecaster.engine.DaskEngine submits it)
        ("forecastJob.engine.daskScheduler",
         ["`--dask-scheduler`", "tcp://host:port or tls://host:port", "must run this chart's image"], []),
        ("networkPolicy.daskEgressTo",
         ["forecastJob.engine.daskScheduler", "dask.org/component: scheduler"], []),
    ],
    ids=["tolerance", "dry-run", "warmup-egress", "dask-scheduler", "dask-egress"],
)
def test_value_descriptions_say_what_the_code_does(key: str, must: list[str], must_not: list[str]) -> None:
    desc = _description(key)
    for phrase in must:
        assert phrase in desc, (key, phrase, desc)
    for phrase in must_not:
        assert phrase not in desc, (key, phrase, desc)
    page = (REPO_ROOT / "docs" / "helm-values.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith(f"| `{key}` |"))
    assert all(phrase in row for phrase in must)
