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
