"""Leader election over a Lease on the real kube-apiserver: two controllers never both lead.

The clock is passed in, so takeovers after expiry need no waiting; conflicts and AlreadyExists come from the
server (two candidates writing with the same resourceVersion, two creates), 403 from a ServiceAccount without
a Lease rule, and only 5xx from the fault proxy.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from controller.adapters.lease import LeaseLock
from tests.support.kube_testbed import KubeTestbed

T0 = pd.Timestamp("2026-11-26T10:00:00+00:00")


def lock(kube: KubeTestbed, client: Any, ident: str, **kw: Any) -> LeaseLock:
    kw = {"lease_duration": 15, "renew_deadline": 10, **kw}
    return LeaseLock(
        client, namespace=kube.namespace, name="recharge-autoscaler", identity=ident, clock=lambda: T0, **kw
    )


def at(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=seconds)


def spec(kube: KubeTestbed) -> dict[str, Any]:
    lease = kube.lease("recharge-autoscaler")
    assert lease is not None
    return dict(lease["spec"])


def test_first_candidate_creates_and_holds(kube: KubeTestbed, kube_client: Any) -> None:
    a = lock(kube, kube_client, "a")
    assert a.acquire_or_renew(at(0)) is True
    s = spec(kube)
    assert s["holderIdentity"] == "a"
    assert s["leaseDurationSeconds"] == 15
    assert s["leaseTransitions"] == 0
    assert s["renewTime"] == "2026-11-26T10:00:00.000001Z"
    assert a.acquire_or_renew(at(5)) is True
    assert spec(kube)["renewTime"] == "2026-11-26T10:00:05.000001Z"
    assert spec(kube)["acquireTime"] == "2026-11-26T10:00:00.000001Z"


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
    kube: KubeTestbed, kube_client: Any, steps: list[tuple[str, float, bool]]
) -> None:
    locks = {"a": lock(kube, kube_client, "a"), "b": lock(kube, kube_client, "b")}
    last_true: dict[str, float] = {}
    for who, sec, expected in steps:
        assert locks[who].acquire_or_renew(at(sec)) is expected, (who, sec)
        if expected:
            assert spec(kube)["holderIdentity"] == who
            other = "b" if who == "a" else "a"
            # the other one last led long enough ago that its lease (15 s) has run out
            assert sec - last_true.get(other, -1e9) >= 15, (who, sec)
            last_true[who] = sec


def test_takeover_counts_a_transition(kube: KubeTestbed, kube_client: Any) -> None:
    a, b = lock(kube, kube_client, "a"), lock(kube, kube_client, "b")
    a.acquire_or_renew(at(0))
    b.acquire_or_renew(at(1))
    assert b.acquire_or_renew(at(17)) is True
    assert spec(kube)["leaseTransitions"] == 1
    assert a.acquire_or_renew(at(18)) is False
    assert a.held is False


def test_release_lets_the_other_take_over_at_once(kube: KubeTestbed, kube_client: Any) -> None:
    a, b = lock(kube, kube_client, "a"), lock(kube, kube_client, "b")
    assert a.acquire_or_renew(at(0))
    assert not b.acquire_or_renew(at(1))
    a.release()
    assert spec(kube)["holderIdentity"] in ("", None)
    assert b.acquire_or_renew(at(2)) is True
    assert spec(kube)["holderIdentity"] == "b"
    a.release()  # not held: no write
    assert spec(kube)["holderIdentity"] == "b"


def test_race_for_a_free_lease_has_one_winner(kube: KubeTestbed, kube_client: Any) -> None:
    """Both read the same released record; the second write carries a stale resourceVersion -> 409."""
    a, b = lock(kube, kube_client, "a"), lock(kube, kube_client, "b")
    a.acquire_or_renew(at(0))
    a.release()
    stale = SimpleNamespace(
        data=b.coord.read_namespaced_lease("recharge-autoscaler", kube.namespace, _preload_content=False).data
    )
    assert a.acquire_or_renew(at(1)) is True
    b.coord.read_namespaced_lease = lambda *args, **kw: stale  # type: ignore[method-assign]
    assert b.acquire_or_renew(at(1)) is False
    assert spec(kube)["holderIdentity"] == "a"
    assert [r.status for r in kube.proxy.calls("PUT", "/leases/")][-1] == 409  # the server refused b's write


def test_concurrent_create_one_wins(kube: KubeTestbed, kube_client: Any) -> None:
    """b finds no Lease; a creates one before b's create arrives; the server answers b 409 AlreadyExists."""
    with kube.client(proxy=False) as direct:
        a, b = lock(kube, direct, "a"), lock(kube, kube_client, "b")
        a_first = kube.proxy.before(lambda: a.acquire_or_renew(at(0)), method="POST", path="/leases$")
        assert b.acquire_or_renew(at(0)) is False
    assert a_first.hits == 1 and a_first.errors == [] and a.held
    assert [(r.method, r.status) for r in kube.proxy.calls(path="/leases")] == [("GET", 404), ("POST", 409)]
    assert spec(kube)["holderIdentity"] == "a"
    assert b.last_error is None  # losing a race is not an error


def test_two_controllers_in_real_time_never_both_lead(kube: KubeTestbed) -> None:
    """Two candidates with their own clients, real clock, renewing every 50 ms; the first leader stops
    renewing (a crash) after 1 s. The other takes over only after the lease has run out."""
    duration, deadline = 2.0, 1.5
    wins: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}  # (call start, call end) of True calls
    stop, crashed = threading.Event(), threading.Event()
    start = threading.Barrier(2)

    def candidate(who: str) -> None:
        with kube.client() as client:
            mine = LeaseLock(
                client,
                namespace=kube.namespace,
                name="race",
                identity=who,
                lease_duration=duration,
                renew_deadline=deadline,
            )
            start.wait()
            while not stop.is_set():
                if crashed.is_set() and wins[who] and not wins["b" if who == "a" else "a"]:
                    return  # the first leader crashed: it never calls again
                began = time.monotonic()
                if mine.acquire_or_renew(pd.Timestamp.now(tz="UTC")):
                    wins[who].append((began, time.monotonic()))
                time.sleep(0.05)

    threads = [threading.Thread(target=candidate, args=(w,)) for w in "ab"]
    for t in threads:
        t.start()
    time.sleep(1.0)
    crashed.set()
    give_up = time.monotonic() + 20
    while time.monotonic() < give_up and not (wins["a"] and wins["b"]):
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    first, second = sorted(wins, key=lambda w: wins[w][0][0] if wins[w] else float("inf"))
    assert wins[first] and wins[second], wins
    last_of_first = wins[first][-1][1]
    takeover = wins[second][0][0]
    # the crashed leader believed itself leader at most renew_deadline after its last renewal; the
    # takeover came later than that, and not before the lease (as observed by the follower) had expired
    assert takeover - last_of_first >= deadline, (takeover - last_of_first, wins)
    assert all(began > last_of_first for began, _ in wins[second])
    lease = kube.lease("race")
    assert lease is not None and lease["spec"]["holderIdentity"] == second
    assert lease["spec"]["leaseTransitions"] == 1


@pytest.mark.parametrize(
    ("fail_at", "expect"), [(3, True), (12, False)], ids=["inside-renew-deadline", "past-renew-deadline"]
)
def test_transient_errors_keep_leadership_until_renew_deadline(
    kube: KubeTestbed, kube_client: Any, fail_at: float, expect: bool
) -> None:
    a = lock(kube, kube_client, "a")
    assert a.acquire_or_renew(at(0))
    kube.proxy.fail(500, method="GET")
    assert a.acquire_or_renew(at(fail_at)) is expect
    assert a.last_error is not None and a.last_error.kind == "unavailable"


def test_forbidden_lease_is_not_leader_and_reported(kube: KubeTestbed) -> None:
    token = kube.identity([])  # a ServiceAccount without any Lease rule
    with kube.client(token) as client:
        a = lock(kube, client, "a")
        assert a.acquire_or_renew(at(0)) is False
    assert f"needs 'get' on 'leases' in namespace {kube.namespace}" in str(a.last_error)
    assert 'cannot get resource "leases" in API group "coordination.k8s.io"' in str(a.last_error)


def test_renew_without_update_rights_steps_down(kube: KubeTestbed) -> None:
    """get and create but no update: the first acquire works, the renewal is refused and leadership lost."""
    token = kube.identity(
        [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create"]}]
    )
    with kube.client(token) as client:
        a = lock(kube, client, "a")
        assert a.acquire_or_renew(at(0)) is True
        assert a.acquire_or_renew(at(11)) is False  # past the renew deadline
    assert a.last_error is not None and a.last_error.kind == "forbidden"
    assert "needs 'update' on 'leases'" in str(a.last_error)


@pytest.mark.parametrize(
    ("duration", "written"),
    [(15.0, 15), (15.4, 16), (0.4, 1)],
    ids=["whole", "fraction-rounds-up", "sub-second"],
)
def test_lease_duration_is_written_as_whole_seconds_never_shorter(
    kube: KubeTestbed, kube_client: Any, duration: float, written: int
) -> None:
    """leaseDurationSeconds is an integer > 0 on the server. Rounding 0.4 s down made the server refuse
    every acquire (422); rounding 15.4 s down told followers the lease ran out at 15 s, before a leader
    with a renew deadline between 15 and 15.4 s steps down, so two could lead."""
    a = lock(kube, kube_client, "a", lease_duration=duration, renew_deadline=duration * 0.9)
    assert a.acquire_or_renew(at(0)) is True, a.last_error
    assert spec(kube)["leaseDurationSeconds"] == written
    b = lock(kube, kube_client, "b", lease_duration=duration, renew_deadline=duration * 0.9)
    assert b.acquire_or_renew(at(0)) is False
    assert b.acquire_or_renew(at(written - 0.05)) is False  # the lease as written has not run out
    assert b.acquire_or_renew(at(written + 0.05)) is True
