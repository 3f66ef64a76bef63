"""ControllerState persistence: JSON round trip and clear errors for a damaged state document."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.core.state import ControllerState
from forecaster.errors import StoreError
from tests.support.builders import at


def test_round_trip_through_json() -> None:
    state = ControllerState(replicas=7, recommendations=((at(0), 7),), scale_events=((at(0), 2),),
                            issued_warmups=(("warmup-abc", at(3600)),))
    assert ControllerState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert ControllerState.from_dict({}) == ControllerState()


def test_restart_hold_round_trips_and_only_grows() -> None:
    state = ControllerState(replicas=7).held_after_restart(30, at(0), 300)
    assert state.restart_hold == (at(300), 30)
    assert ControllerState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert "restartHold" not in ControllerState().to_dict()  # older readers see the same document
    # a second restart inside the window keeps the higher count and the later end
    again = state.held_after_restart(20, at(100), 300)
    assert again.restart_hold == (at(400), 30)
    assert state.held_after_restart(20, at(400), 0) is state  # no window, no hold


def test_forget_warmup_and_with_replicas() -> None:
    state = ControllerState(issued_warmups=(("a", at(0)), ("b", at(0))))
    assert state.forget_warmup("a").issued_warmups == (("b", at(0)),)
    assert state.issued("a") and not state.forget_warmup("a").issued("a")
    assert state.with_replicas(4).replicas == 4 and state.replicas is None


@pytest.mark.parametrize(
    "data",
    [[], {"replicas": "many"}, {"recommendations": [["2026-11-26T10:00:00", 3]]},
     {"issuedWarmups": [["k"]]}],
    ids=["not-a-mapping", "bad-replicas", "naive-timestamp", "short-pair"],
)
def test_damaged_state_is_a_store_error(data: Any) -> None:
    with pytest.raises(StoreError, match="controller state: malformed"):
        ControllerState.from_dict(data)


def test_memory_dated_after_now_is_redated_to_now() -> None:
    """The wall clock stepped back an hour: recommendations and scale events dated 'in the future' count as
    made now (so they hold a scale-down for one window, not an hour, and never freeze a scale-up), and a
    restart hold ends at most one window from now."""
    future = at(3600)
    state = ControllerState(replicas=10, recommendations=((at(-30), 9), (future, 10)),
                            scale_events=((future, 4),), restart_hold=(at(3900), 10))
    out = state.not_after(at(0), hold_seconds=300)
    assert out.recommendations == ((at(-30), 9), (at(0), 10))
    assert out.scale_events == ((at(0), 4),)
    assert out.restart_hold == (at(300), 10)
    clean = ControllerState(replicas=3, recommendations=((at(-30), 3),))
    assert clean.not_after(at(0), hold_seconds=300) is clean  # nothing to do: the same object
