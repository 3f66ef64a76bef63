"""The Kubernetes scale target and event sink against the stand-in API server: real HTTP, real client."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.adapters.kube import KubeEventSink, KubeScaleTarget, LogEventSink
from controller.ports import TargetStatus
from forecaster.adapters.kube import KubeConflict, KubeForbidden, KubeNotFound, KubeUnavailable, call_api
from tests.support.kubeapi.fixtures import NAMESPACE, TARGET
from tests.support.kubeapi.server import KubeApiServer

ANN = "recharge-autoscaler.io/decision"
PAUSE = "recharge-autoscaler.io/paused"


def target(client: Any, mode: str, **kw: Any) -> KubeScaleTarget:
    return KubeScaleTarget(
        client, namespace=NAMESPACE, name=TARGET, mode=mode, sleep=lambda s: None, timeout=2.0, **kw
    )


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("hpa", TargetStatus(replicas=3, ready_replicas=3, floor=2, paused=False)),
        ("scale", TargetStatus(replicas=3, ready_replicas=3, floor=None, paused=False)),
    ],
    ids=["hpa-mode", "scale-mode"],
)
def test_status_reads_replicas_ready_and_floor(
    kube_seeded: KubeApiServer, kube_client: Any, mode: str, expected: TargetStatus
) -> None:
    st = target(kube_client, mode).status()
    assert (st.replicas, st.ready_replicas, st.floor, st.paused) == (
        expected.replicas,
        expected.ready_replicas,
        expected.floor,
        expected.paused,
    )
    assert st.resource_version


@pytest.mark.parametrize(
    ("on", "value", "paused"),
    [("deployment", "true", True), ("hpa", "True", True), ("deployment", "false", False), (None, "", False)],
    ids=["deploy-true", "hpa-true", "explicit-false", "absent"],
)
def test_pause_annotation_on_deployment_or_hpa(
    kube_api: KubeApiServer, kube_client: Any, on: str | None, value: str, paused: bool
) -> None:
    kube_api.seed_deployment(NAMESPACE, TARGET, 3, annotations={PAUSE: value} if on == "deployment" else None)
    kube_api.seed_hpa(NAMESPACE, TARGET, annotations={PAUSE: value} if on == "hpa" else None)
    assert target(kube_client, "hpa").status().paused is paused


@pytest.mark.parametrize(
    ("asked", "floor"), [(7, 7), (35, 20), (0, 1)], ids=["within", "clamped-to-max", "at-least-one"]
)
def test_hpa_mode_sets_min_replicas_and_annotation(
    kube_seeded: KubeApiServer, kube_client: Any, asked: int, floor: int
) -> None:
    t = target(kube_client, "hpa")
    note = json.dumps({"replicas": asked, "reason": "forecast"})
    t.apply(asked, note)
    hpa = kube_seeded.hpa(NAMESPACE, TARGET)
    assert hpa is not None
    assert hpa["spec"]["minReplicas"] == floor
    assert hpa["metadata"]["annotations"][ANN] == note
    assert t.last_applied == floor
    dep = kube_seeded.deployment(NAMESPACE, TARGET)
    assert dep is not None and dep["spec"]["replicas"] == 3  # the HPA, not us, moves the Deployment


def test_scale_mode_patches_scale_subresource_and_annotates_deployment(
    kube_seeded: KubeApiServer, kube_client: Any
) -> None:
    target(kube_client, "scale").apply(6, '{"replicas": 6}')
    dep = kube_seeded.deployment(NAMESPACE, TARGET)
    assert dep is not None
    assert dep["spec"]["replicas"] == 6
    assert dep["metadata"]["annotations"][ANN] == '{"replicas": 6}'
    paths = [(r.method, r.path) for r in kube_seeded.requests if r.method == "PATCH"]
    assert paths == [
        ("PATCH", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{TARGET}/scale"),
        ("PATCH", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{TARGET}"),
    ]


def test_apply_without_change_does_not_write(kube_seeded: KubeApiServer, kube_client: Any) -> None:
    t = target(kube_client, "hpa")
    t.apply(5, "same")
    writes = sum(r.method == "PATCH" for r in kube_seeded.requests)
    t.apply(5, "same")
    assert sum(r.method == "PATCH" for r in kube_seeded.requests) == writes == 1


@pytest.mark.parametrize("mode", ["hpa", "scale"], ids=["hpa", "scale"])
def test_conflicts_are_reread_and_retried(kube_seeded: KubeApiServer, kube_client: Any, mode: str) -> None:
    kube_seeded.fail(409, count=2, method="PATCH")
    t = target(kube_client, mode)
    t.apply(8, "x")
    assert t.last_applied == 8
    gets = [r for r in kube_seeded.requests if r.method == "GET"]
    assert len(gets) == 3  # one read per attempt


def test_persistent_conflict_gives_up(kube_seeded: KubeApiServer, kube_client: Any) -> None:
    kube_seeded.fail(409, count=10, method="PATCH")
    with pytest.raises(KubeConflict, match="gave up after 3 attempts"):
        target(kube_client, "hpa", conflict_retries=2).apply(8, "x")
    hpa = kube_seeded.hpa(NAMESPACE, TARGET)
    assert hpa is not None and hpa["spec"]["minReplicas"] == 2


def test_stale_resource_version_is_a_real_conflict(kube_seeded: KubeApiServer, kube_client: Any) -> None:
    """A write between our read and our patch makes the server answer 409; the retry uses fresh data."""
    t = target(kube_client, "scale")
    original = t._read_deployment
    calls = {"n": 0}

    def racing_read() -> Any:
        dep = original()
        if calls["n"] == 0:  # someone else scales after our first read
            kube_seeded.create(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "bump", "namespace": NAMESPACE},
                }
            )
            client_apps = t.apps
            client_apps.patch_namespaced_deployment_scale(TARGET, NAMESPACE, {"spec": {"replicas": 4}})
        calls["n"] += 1
        return dep

    t._read_deployment = racing_read  # type: ignore[method-assign]
    t.apply(9, "x")
    assert calls["n"] == 2
    assert any(r.status == 409 for r in kube_seeded.requests)
    dep = kube_seeded.deployment(NAMESPACE, TARGET)
    assert dep is not None and dep["spec"]["replicas"] == 9


@pytest.mark.parametrize(
    ("mode", "needle"),
    [
        ("hpa", "needs 'patch' on 'horizontalpodautoscalers' in namespace payments"),
        ("scale", "needs 'patch' on 'deployments/scale' in namespace payments"),
    ],
    ids=["hpa", "scale"],
)
def test_forbidden_names_the_missing_rbac_rule(
    kube_seeded: KubeApiServer, kube_client: Any, mode: str, needle: str
) -> None:
    kube_seeded.fail(403, method="PATCH")
    with pytest.raises(KubeForbidden, match=needle) as info:
        target(kube_client, mode).apply(8, "x")
    assert "cannot patch resource" in str(info.value)  # the API server's own words are kept
    assert info.value.kind == "forbidden"


@pytest.mark.parametrize(
    ("code", "count", "ok"),
    [(500, 2, True), (503, 3, True), (500, 4, False), (429, 1, True)],
    ids=["500-twice", "503-thrice", "500-exhausts", "429"],
)
def test_server_errors_back_off_then_raise(
    kube_seeded: KubeApiServer, kube_client: Any, code: int, count: int, ok: bool
) -> None:
    sleeps: list[float] = []
    kube_seeded.fail(code, count=count, method="GET")
    t = KubeScaleTarget(
        kube_client,
        namespace=NAMESPACE,
        name=TARGET,
        mode="scale",
        sleep=sleeps.append,
        retries=3,
        backoff=0.5,
    )
    if ok:
        assert t.status().replicas == 3
    else:
        with pytest.raises(KubeUnavailable, match=f"after 4 attempts .*HTTP {code}"):
            t.status()
    assert sleeps == [0.5, 1.0, 2.0][: min(count, 3)]


def test_timeout_is_retried_then_unavailable(kube_seeded: KubeApiServer, kube_client: Any) -> None:
    kube_seeded.slow(1.0, count=2, method="GET")
    t = KubeScaleTarget(
        kube_client,
        namespace=NAMESPACE,
        name=TARGET,
        mode="scale",
        sleep=lambda s: None,
        retries=1,
        timeout=0.2,
    )
    with pytest.raises(KubeUnavailable, match="after 2 attempts"):
        t.status()


def test_missing_target_is_not_found(kube_api: KubeApiServer, kube_client: Any) -> None:
    with pytest.raises(KubeNotFound, match="deployments payments/recharge not found"):
        target(kube_client, "scale").status()


def test_call_api_lets_programming_errors_through() -> None:
    with pytest.raises(ZeroDivisionError):
        call_api(lambda: 1 / 0, verb="get", resource="x", namespace="n")


def test_event_sink_creates_and_counts_repeats(kube_seeded: KubeApiServer, kube_client: Any) -> None:
    involved = {"apiVersion": "apps/v1", "kind": "Deployment", "name": TARGET}
    sink = KubeEventSink(kube_client, namespace=NAMESPACE, involved=involved)
    sink.emit("ScaledUp", "3 -> 6 replicas: forecast peak 950 req/s")
    sink.emit("ScaledUp", "3 -> 6 replicas: forecast peak 950 req/s")
    sink.emit("StaleForecast", "forecast is 4h old", warning=True)
    events = kube_seeded.events(NAMESPACE)
    assert [(e["reason"], e["type"], e["count"]) for e in events] == [
        ("ScaledUp", "Normal", 2),
        ("StaleForecast", "Warning", 1),
    ]
    assert events[0]["involvedObject"] == {**involved, "namespace": NAMESPACE}
    assert events[0]["source"] == {"component": "recharge-autoscaler"}
    assert sink.failures == 0


def test_event_sink_never_raises(kube_seeded: KubeApiServer, kube_client: Any) -> None:
    kube_seeded.fail(403, method="POST", path="/events")
    sink = KubeEventSink(kube_client, namespace=NAMESPACE, involved={"kind": "Deployment", "name": TARGET})
    sink.emit("ScaledUp", "x")
    assert sink.failures == 1
    sink.emit("ScaledUp", "x")  # not deduplicated against a failed create
    assert len(kube_seeded.events(NAMESPACE)) == 1


def test_log_event_sink_records() -> None:
    sink = LogEventSink()
    sink.emit("Paused", "annotation set", warning=True)
    assert sink.emitted == [("Paused", "annotation set", True)]
