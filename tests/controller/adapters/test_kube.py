"""The Kubernetes scale target and event sink against the real kube-apiserver (tests/support/kube_envtest.py).

The code under test talks through the fault proxy (tests/support/kubeproxy.py): 409s come from a concurrent
writer the proxy lets in just before our write, 403s from a ServiceAccount whose Role lacks the verb, and
only what a healthy server never says on demand (5xx, 429, slow answers, dropped connections) is injected.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from controller.adapters.kube import KubeEventSink, KubeScaleTarget, LogEventSink
from controller.ports import TargetStatus
from forecaster.adapters.kube import KubeConflict, KubeForbidden, KubeNotFound, KubeUnavailable, call_api
from tests.support.kube_testbed import TARGET, KubeTestbed

ANN = "recharge-autoscaler.io/decision"
PAUSE = "recharge-autoscaler.io/paused"
HPA_PATH = r"/horizontalpodautoscalers/"
READ_TARGET = [
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["get"]},
]


def target(kube: KubeTestbed, client: Any, mode: str, **kw: Any) -> KubeScaleTarget:
    kw = {"sleep": lambda s: None, "timeout": 5.0, **kw}
    return KubeScaleTarget(client, namespace=kube.namespace, name=TARGET, mode=mode, **kw)


def concurrent_writer(kube: KubeTestbed, api_version: str, kind: str) -> Any:
    """A callback that changes the object behind our back (a new annotation value each time)."""
    counter = iter(range(1, 1000))

    def write() -> None:
        kube.patch(
            api_version, kind, TARGET, {"metadata": {"annotations": {"other/writer": str(next(counter))}}}
        )

    return write


def test_status_reads_replicas_ready_and_floor_in_both_modes(kube: KubeTestbed, kube_client: Any) -> None:
    kube.seed_deployment(TARGET, 4, ready=3)
    kube.seed_hpa(TARGET, min_replicas=2, max_replicas=20)
    hpa_status = target(kube, kube_client, "hpa").status()
    assert (hpa_status.replicas, hpa_status.ready_replicas, hpa_status.floor, hpa_status.paused) == (
        4,
        3,
        2,
        False,
    )
    assert hpa_status.resource_version == kube.hpa()["metadata"]["resourceVersion"]  # type: ignore[index]
    scale_status = target(kube, kube_client, "scale").status()
    assert scale_status == TargetStatus(4, 3, None, False, kube.deployment()["metadata"]["resourceVersion"])  # type: ignore[index]


def test_status_of_a_deployment_no_controller_has_seen(kube: KubeTestbed, kube_client: Any) -> None:
    """A Deployment without status (no controller manager, or just created) reads as 0 ready, not an error."""
    kube.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": TARGET},
            "spec": {
                "selector": {"matchLabels": {"app": "r"}},
                "template": {
                    "metadata": {"labels": {"app": "r"}},
                    "spec": {"containers": [{"name": "r", "image": "r:1"}]},
                },
            },
        }
    )
    kube.seed_hpa(TARGET, current=None)
    status = target(kube, kube_client, "hpa").status()
    assert (status.replicas, status.ready_replicas, status.floor) == (1, 0, 2)  # spec.replicas defaulted to 1


@pytest.mark.parametrize(
    ("on", "value", "paused"),
    [("deployment", "true", True), ("hpa", "True", True), ("deployment", "false", False), (None, "", False)],
    ids=["deploy-true", "hpa-true", "explicit-false", "absent"],
)
def test_pause_annotation_on_deployment_or_hpa(
    kube: KubeTestbed, kube_client: Any, on: str | None, value: str, paused: bool
) -> None:
    kube.seed_deployment(TARGET, 3, annotations={PAUSE: value} if on == "deployment" else None)
    kube.seed_hpa(TARGET, annotations={PAUSE: value} if on == "hpa" else None)
    assert target(kube, kube_client, "hpa").status().paused is paused


def test_pause_set_by_kubectl_style_patch_is_seen(kube_seeded: KubeTestbed, kube_client: Any) -> None:
    t = target(kube_seeded, kube_client, "scale")
    assert t.status().paused is False
    kube_seeded.patch("apps/v1", "Deployment", TARGET, {"metadata": {"annotations": {PAUSE: "true"}}})
    assert t.status().paused is True


@pytest.mark.parametrize(
    ("asked", "floor"), [(7, 7), (35, 20), (0, 1)], ids=["within", "clamped-to-max", "at-least-one"]
)
def test_hpa_mode_sets_min_replicas_and_annotation(
    kube_seeded: KubeTestbed, kube_client: Any, asked: int, floor: int
) -> None:
    t = target(kube_seeded, kube_client, "hpa")
    note = json.dumps({"replicas": asked, "reason": "forecast"})
    t.apply(asked, note)
    hpa = kube_seeded.hpa()
    assert hpa is not None
    assert hpa["spec"]["minReplicas"] == floor
    assert hpa["metadata"]["annotations"][ANN] == note
    assert hpa["spec"]["maxReplicas"] == 20 and hpa["spec"]["metrics"]  # the rest of the spec is untouched
    assert t.last_applied == floor
    dep = kube_seeded.deployment()
    assert dep is not None and dep["spec"]["replicas"] == 3  # the HPA, not us, moves the Deployment
    assert ANN not in (dep["metadata"].get("annotations") or {})


def test_scale_mode_patches_scale_subresource_and_annotates_deployment(
    kube_seeded: KubeTestbed, kube_client: Any
) -> None:
    target(kube_seeded, kube_client, "scale").apply(6, '{"replicas": 6}')
    dep = kube_seeded.deployment()
    assert dep is not None
    assert dep["spec"]["replicas"] == 6
    assert dep["metadata"]["annotations"][ANN] == '{"replicas": 6}'
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/recharge:1.0"
    ns = kube_seeded.namespace
    assert [(r.method, r.path, r.status) for r in kube_seeded.proxy.calls("PATCH")] == [
        ("PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/{TARGET}/scale", 200),
        ("PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/{TARGET}", 200),
    ]
    hpa = kube_seeded.hpa()
    assert (
        hpa is not None
        and hpa["spec"]["minReplicas"] == 2
        and ANN not in hpa["metadata"].get("annotations", {})
    )


@pytest.mark.parametrize("mode", ["hpa", "scale"])
def test_apply_without_change_does_not_write(kube_seeded: KubeTestbed, kube_client: Any, mode: str) -> None:
    t = target(kube_seeded, kube_client, mode)
    t.apply(5, "same")
    writes = len(kube_seeded.proxy.calls("PATCH"))
    t.apply(5, "same")
    assert len(kube_seeded.proxy.calls("PATCH")) == writes == (1 if mode == "hpa" else 2)


@pytest.mark.parametrize(
    ("mode", "api_version", "kind"),
    [("hpa", "autoscaling/v2", "HorizontalPodAutoscaler"), ("scale", "apps/v1", "Deployment")],
    ids=["hpa", "scale"],
)
def test_conflicts_from_a_concurrent_writer_are_reread_and_retried(
    kube_seeded: KubeTestbed, kube_client: Any, mode: str, api_version: str, kind: str
) -> None:
    proxy = kube_seeded.proxy
    writer = proxy.before(concurrent_writer(kube_seeded, api_version, kind), count=2, method="PATCH")
    t = target(kube_seeded, kube_client, mode)
    t.apply(8, "x")
    assert writer.hits == 2 and writer.errors == []
    assert t.last_applied == 8
    statuses = [r.status for r in proxy.calls("PATCH")]
    assert statuses[:3] == [409, 409, 200]  # the server itself refused the two stale writes
    assert len(proxy.calls("GET")) == 3  # one read per attempt
    obj = kube_seeded.get(api_version, kind, TARGET)
    assert obj is not None
    assert obj["metadata"]["annotations"] == {"other/writer": "2", ANN: "x"}  # both writers' changes kept
    assert (obj["spec"]["minReplicas"] if mode == "hpa" else obj["spec"]["replicas"]) == 8


def test_persistent_conflict_gives_up(kube_seeded: KubeTestbed, kube_client: Any) -> None:
    kube_seeded.proxy.before(
        concurrent_writer(kube_seeded, "autoscaling/v2", "HorizontalPodAutoscaler"), count=10, method="PATCH"
    )
    with pytest.raises(KubeConflict, match=r"the object has been modified.*gave up after 3 attempts"):
        target(kube_seeded, kube_client, "hpa", conflict_retries=2).apply(8, "x")
    assert [r.status for r in kube_seeded.proxy.calls("PATCH")] == [409, 409, 409]
    hpa = kube_seeded.hpa()
    assert hpa is not None and hpa["spec"]["minReplicas"] == 2


def test_stale_resource_version_is_a_real_conflict(kube_seeded: KubeTestbed, kube_client: Any) -> None:
    """Someone scales between our read and our patch: the server answers 409; the retry uses fresh data."""
    t = target(kube_seeded, kube_client, "scale")
    original = t._read_deployment
    calls = {"n": 0}

    def racing_read() -> Any:
        dep = original()
        if calls["n"] == 0:  # someone else scales after our first read
            kube_seeded.patch("apps/v1", "Deployment", TARGET, {"spec": {"replicas": 4}}, subresource="scale")
        calls["n"] += 1
        return dep

    t._read_deployment = racing_read  # type: ignore[method-assign]
    t.apply(9, "x")
    assert calls["n"] == 2
    assert [r.status for r in kube_seeded.proxy.calls("PATCH", r"/scale$")] == [409, 200]
    dep = kube_seeded.deployment()
    assert dep is not None and dep["spec"]["replicas"] == 9


@pytest.mark.parametrize(
    ("mode", "rules", "needle", "server_words"),
    [
        (
            "hpa",
            READ_TARGET,
            "needs 'patch' on 'horizontalpodautoscalers' in namespace {ns}",
            'cannot patch resource "horizontalpodautoscalers" in API group "autoscaling"',
        ),
        (
            "scale",
            [*READ_TARGET, {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}],
            "needs 'patch' on 'deployments/scale' in namespace {ns}",
            'cannot patch resource "deployments/scale" in API group "apps"',
        ),
    ],
    ids=["hpa", "scale"],
)
def test_forbidden_names_the_missing_rbac_rule(
    kube_seeded: KubeTestbed, mode: str, rules: list[dict[str, Any]], needle: str, server_words: str
) -> None:
    token = kube_seeded.identity(rules)
    with kube_seeded.client(token) as client:
        t = target(kube_seeded, client, mode)
        assert t.status().replicas == 3  # reading is allowed
        with pytest.raises(KubeForbidden, match=needle.format(ns=kube_seeded.namespace)) as info:
            t.apply(8, "x")
    assert server_words in str(info.value)  # the API server's own words are kept
    assert info.value.kind == "forbidden"
    assert [r.status for r in kube_seeded.proxy.calls("PATCH")] == [403]
    dep, hpa = kube_seeded.deployment(), kube_seeded.hpa()
    assert dep is not None and hpa is not None
    assert (dep["spec"]["replicas"], hpa["spec"]["minReplicas"]) == (3, 2)


def test_a_resource_name_rule_for_another_deployment_does_not_grant_this_one(
    kube_seeded: KubeTestbed,
) -> None:
    kube_seeded.seed_deployment("other", 2)
    token = kube_seeded.identity(
        [{"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["other"], "verbs": ["get"]}]
    )
    with kube_seeded.client(token) as client:
        other = KubeScaleTarget(client, namespace=kube_seeded.namespace, name="other", mode="scale")
        assert other.status().replicas == 2
        with pytest.raises(KubeForbidden, match="needs 'get' on 'deployments'"):
            target(kube_seeded, client, "scale").status()


@pytest.mark.parametrize(
    ("code", "count", "ok"),
    [(500, 2, True), (503, 3, True), (500, 4, False), (429, 1, True), (504, 1, True)],
    ids=["500-twice", "503-thrice", "500-exhausts", "429", "504"],
)
def test_server_errors_back_off_then_raise(
    kube_seeded: KubeTestbed, kube_client: Any, code: int, count: int, ok: bool
) -> None:
    sleeps: list[float] = []
    kube_seeded.proxy.fail(code, count=count, method="GET")
    t = target(kube_seeded, kube_client, "scale", sleep=sleeps.append, retries=3, backoff=0.5)
    if ok:
        assert t.status().replicas == 3
    else:
        with pytest.raises(KubeUnavailable, match=f"after 4 attempts .*HTTP {code}"):
            t.status()
    assert sleeps == [0.5, 1.0, 2.0][: min(count, 3)]
    assert [r.status for r in kube_seeded.proxy.calls("GET")] == [code] * min(count, 4) + (
        [200] if ok else []
    )


def test_timeout_is_retried_then_unavailable(kube_seeded: KubeTestbed, kube_client: Any) -> None:
    kube_seeded.proxy.slow(5.0, count=2, method="GET")
    t = target(kube_seeded, kube_client, "scale", retries=1, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(KubeUnavailable, match=r"after 2 attempts \(.*[Tt]imeout"):
        t.status()
    assert time.monotonic() - started < 4  # gave up on time (2 x 0.2 s), did not wait for the slow answers


def test_dropped_connections_are_retried(kube_seeded: KubeTestbed, kube_client: Any) -> None:
    kube_seeded.proxy.drop(count=2, method="GET")
    t = target(kube_seeded, kube_client, "hpa", retries=2)
    assert t.status().floor == 2
    assert [r.status for r in kube_seeded.proxy.calls("GET")][:3] == [0, 0, 200]


def test_an_answer_lost_after_the_write_is_not_applied_twice(
    kube_seeded: KubeTestbed, kube_client: Any
) -> None:
    """The server applied our patch but the connection dropped before the answer: the retry of the same
    write carries the old resourceVersion, the server refuses it (409), and the re-read finds it done."""
    kube_seeded.proxy.drop(count=1, method="PATCH", after=True)
    t = target(kube_seeded, kube_client, "hpa")
    t.apply(9, "once")
    assert t.last_applied == 9
    assert [r.status for r in kube_seeded.proxy.calls("PATCH")] == [0, 409]
    hpa = kube_seeded.hpa()
    assert (
        hpa is not None and hpa["spec"]["minReplicas"] == 9 and hpa["metadata"]["annotations"][ANN] == "once"
    )


def test_missing_target_is_not_found(kube: KubeTestbed, kube_client: Any) -> None:
    with pytest.raises(
        KubeNotFound, match=f'deployments {kube.namespace}/recharge not found .*"recharge" not found'
    ):
        target(kube, kube_client, "scale").status()


def test_call_api_lets_programming_errors_through() -> None:
    with pytest.raises(ZeroDivisionError):
        call_api(lambda: 1 / 0, verb="get", resource="x", namespace="n")


def test_event_sink_creates_and_counts_repeats(kube_seeded: KubeTestbed, kube_client: Any) -> None:
    involved = {"apiVersion": "apps/v1", "kind": "Deployment", "name": TARGET}
    sink = KubeEventSink(kube_client, namespace=kube_seeded.namespace, involved=involved)
    sink.emit("ScaledUp", "3 -> 6 replicas: forecast peak 950 req/s")
    sink.emit("ScaledUp", "3 -> 6 replicas: forecast peak 950 req/s")
    sink.emit("StaleForecast", "forecast is 4h old", warning=True)
    assert sink.failures == 0
    events = sorted(kube_seeded.events(), key=lambda e: str(e["reason"]))
    assert [(e["reason"], e["type"], e["count"]) for e in events] == [
        ("ScaledUp", "Normal", 2),
        ("StaleForecast", "Warning", 1),
    ]
    assert events[0]["involvedObject"] == {**involved, "namespace": kube_seeded.namespace}
    assert events[0]["source"] == {"component": "recharge-autoscaler"}
    assert [r.method for r in kube_seeded.proxy.calls(path="/events")] == ["POST", "PATCH", "POST"]


def test_event_sink_never_raises_and_retries_a_failed_create(kube_seeded: KubeTestbed) -> None:
    token = kube_seeded.identity([], name="no-events")
    with kube_seeded.client(token) as client:
        sink = KubeEventSink(
            client, namespace=kube_seeded.namespace, involved={"kind": "Deployment", "name": TARGET}
        )
        sink.emit("ScaledUp", "x")  # 403 from the server: counted, not raised
        assert sink.failures == 1
        kube_seeded.grant(
            "no-events", [{"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]}]
        )
        sink.emit("ScaledUp", "x")  # not deduplicated against the failed create: a new Event is created
    assert sink.failures == 1
    assert [(r.method, r.status) for r in kube_seeded.proxy.calls(path="/events")] == [
        ("POST", 403),
        ("POST", 201),
    ]
    assert [e["reason"] for e in kube_seeded.events()] == ["ScaledUp"]


def test_log_event_sink_records() -> None:
    sink = LogEventSink()
    sink.emit("Paused", "annotation set", warning=True)
    assert sink.emitted == [("Paused", "annotation set", True)]
