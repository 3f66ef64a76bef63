"""Leader election over a Lease: two controllers against one API server never both lead."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from controller.adapters.lease import LeaseLock
from tests.support.kubeapi.fixtures import NAMESPACE
from tests.support.kubeapi.server import KubeApiServer

T0 = pd.Timestamp("2026-11-26T10:00:00+00:00")


def lock(client: Any, ident: str, **kw: Any) -> LeaseLock:
    return LeaseLock(
        client,
        namespace=NAMESPACE,
        name="recharge-autoscaler",
        identity=ident,
        lease_duration=15,
        renew_deadline=10,
        clock=lambda: T0,
        **kw,
    )


def at(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=seconds)


def spec(server: KubeApiServer) -> dict[str, Any]:
    lease = server.lease(NAMESPACE, "recharge-autoscaler")
    assert lease is not None
    return dict(lease["spec"])


def test_first_candidate_creates_and_holds(kube_api: KubeApiServer, kube_client: Any) -> None:
    a = lock(kube_client, "a")
    assert a.acquire_or_renew(at(0)) is True
    s = spec(kube_api)
    assert s["holderIdentity"] == "a"
    assert s["leaseDurationSeconds"] == 15
    assert s["leaseTransitions"] == 0
    assert s["renewTime"] == "2026-11-26T10:00:00.000001+00:00"
    assert a.acquire_or_renew(at(5)) is True
    assert spec(kube_api)["renewTime"] == "2026-11-26T10:00:05.000001+00:00"
    assert spec(kube_api)["acquireTime"] == "2026-11-26T10:00:00.000001+00:00"


# Timeline: (who, second, expected result). "a" stops renewing after t=5.
SCENARIOS = {
    "follower-waits": [
        ("a", 0, True),
        ("b", 1, False),
        ("a", 5, True),
        ("b", 10, False),
        ("a", 12, True),
        ("b", 20, False),
    ],
    "takeover-after-expiry": [
        ("a", 0, True),
        ("b", 1, False),
        ("b", 16, True),
        ("a", 17, False),
        ("b", 20, True),
    ],
    "observed-time-not-renew-time": [("a", 0, True), ("b", 14, False), ("b", 20, False), ("b", 29, True)],
}


@pytest.mark.parametrize("steps", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_two_locks_never_both_hold(
    kube_api: KubeApiServer, kube_client: Any, steps: list[tuple[str, float, bool]]
) -> None:
    locks = {"a": lock(kube_client, "a"), "b": lock(kube_client, "b")}
    last_true: dict[str, float] = {}
    for who, sec, expected in steps:
        assert locks[who].acquire_or_renew(at(sec)) is expected, (who, sec)
        if expected:
            assert spec(kube_api)["holderIdentity"] == who
            other = "b" if who == "a" else "a"
            # the other one last led long enough ago that its lease (15 s) has run out
            assert sec - last_true.get(other, -1e9) >= 15, (who, sec)
            last_true[who] = sec


def test_takeover_counts_a_transition(kube_api: KubeApiServer, kube_client: Any) -> None:
    a, b = lock(kube_client, "a"), lock(kube_client, "b")
    a.acquire_or_renew(at(0))
    b.acquire_or_renew(at(1))
    assert b.acquire_or_renew(at(17)) is True
    assert spec(kube_api)["leaseTransitions"] == 1
    assert a.acquire_or_renew(at(18)) is False
    assert a.held is False


def test_release_lets_the_other_take_over_at_once(kube_api: KubeApiServer, kube_client: Any) -> None:
    a, b = lock(kube_client, "a"), lock(kube_client, "b")
    assert a.acquire_or_renew(at(0))
    assert not b.acquire_or_renew(at(1))
    a.release()
    assert spec(kube_api)["holderIdentity"] in ("", None)
    assert b.acquire_or_renew(at(2)) is True
    assert spec(kube_api)["holderIdentity"] == "b"
    a.release()  # not held: no write
    assert spec(kube_api)["holderIdentity"] == "b"


def test_race_for_a_free_lease_has_one_winner(kube_api: KubeApiServer, kube_client: Any) -> None:
    """Both read the same released record; the second write carries a stale resourceVersion -> 409."""
    a, b = lock(kube_client, "a"), lock(kube_client, "b")
    a.acquire_or_renew(at(0))
    a.release()
    stale = SimpleNamespace(
        data=b.coord.read_namespaced_lease("recharge-autoscaler", NAMESPACE, _preload_content=False).data
    )
    assert a.acquire_or_renew(at(1)) is True
    b.coord.read_namespaced_lease = lambda *args, **kw: stale  # type: ignore[method-assign]
    assert b.acquire_or_renew(at(1)) is False
    assert spec(kube_api)["holderIdentity"] == "a"
    assert any(r.status == 409 for r in kube_api.requests)


def test_concurrent_create_one_wins(kube_api: KubeApiServer, kube_client: Any) -> None:
    a, b = lock(kube_client, "a"), lock(kube_client, "b")
    kube_api.fail(404, count=2, method="GET", path="/leases/")  # both believe there is no lease yet
    assert a.acquire_or_renew(at(0)) is True
    assert b.acquire_or_renew(at(0)) is False  # its create gets 409 AlreadyExists
    assert spec(kube_api)["holderIdentity"] == "a"


@pytest.mark.parametrize(
    ("fail_at", "expect"), [(3, True), (12, False)], ids=["inside-renew-deadline", "past-renew-deadline"]
)
def test_transient_errors_keep_leadership_until_renew_deadline(
    kube_api: KubeApiServer, kube_client: Any, fail_at: float, expect: bool
) -> None:
    a = lock(kube_client, "a")
    assert a.acquire_or_renew(at(0))
    kube_api.fail(500, method="GET")
    assert a.acquire_or_renew(at(fail_at)) is expect
    assert a.last_error is not None and a.last_error.kind == "unavailable"


def test_forbidden_lease_is_not_leader_and_reported(kube_api: KubeApiServer, kube_client: Any) -> None:
    kube_api.fail(403, method="GET")
    a = lock(kube_client, "a")
    assert a.acquire_or_renew(at(0)) is False
    assert "needs 'get' on 'leases' in namespace payments" in str(a.last_error)
