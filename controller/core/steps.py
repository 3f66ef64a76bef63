"""How the decision core explains itself: named steps with messages that are built only when read.

Every number :func:`controller.core.decision.decide` produces comes with the step that set it (a reason
code such as ``ScaleUpLimit`` and a human message), collected on a :class:`Trace`. A decision runs every
loop tick and tens of thousands of times per simulated month while its messages are read only when it is
logged, annotated or explained, so messages may be given as zero-argument callables (:data:`Text`, made
with :func:`text`) and are formatted on first read (:class:`Deferred`). Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

Text = str | Callable[[], str]
"""A message, or a zero-argument callable that builds it (see :class:`Deferred`)."""
_C = TypeVar("_C", bound=type)


class Deferred:
    """A dataclass field whose value may be stored as a zero-argument callable, called (once) on first read.

    A decision runs every loop tick and tens of thousands of times per simulated month, while its messages
    are read only when it is logged, annotated, explained or compared. Formatting them (floats, clock times)
    was most of a decision's cost, so the decision core stores ``partial(format, *values)`` instead and the
    text is built on first read. Readers always see the declared type: ``step.message`` is a ``str``,
    equality, ``repr``, ``to_dict`` and ``dataclasses.replace`` read it the same way. The raw value lives
    in the instance ``__dict__`` under the field's own name (the descriptor takes precedence on lookup).
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            raise AttributeError(self.name)  # no class-level default: the dataclass field keeps its own
        values = obj.__dict__
        try:
            value = values[self.name]
        except KeyError:
            raise AttributeError(self.name) from None
        if callable(value):
            value = values[self.name] = value()
        return value

    def __set__(self, obj: object, value: Any) -> None:
        obj.__dict__[self.name] = value


def deferred_fields(*names: str) -> Callable[[_C], _C]:
    """Class decorator (applied after ``@dataclass``): make ``names`` :class:`Deferred` fields."""

    def install(cls: _C) -> _C:
        for name in names:
            setattr(cls, name, Deferred(name))
        return cls

    return install


def raw(obj: object, name: str) -> Any:
    """The stored value of a :class:`Deferred` field without building it (a callable or the value)."""
    return obj.__dict__[name]


def text(template: str, *args: Any) -> Text:
    """``template.format(*args)``, built when first read (the arguments are bound now)."""
    return partial(template.format, *args)


@deferred_fields("message")
@dataclass(frozen=True, init=False)
class Step:
    """One named step of a decision: its reason code, a human message and the replica count after it.

    ``message`` may be given as a zero-argument callable (a :data:`Text`); it is built on first read.
    """

    reason: str
    message: str
    replicas: int | None = None
    warning: bool = False

    def __init__(
        self, reason: str, message: Text, replicas: int | None = None, warning: bool = False
    ) -> None:
        # Steps are made on every tick: one dict update instead of a frozen dataclass's per-field
        # object.__setattr__ (the same instance dict the Deferred field reads).
        self.__dict__.update(reason=reason, message=message, replicas=replicas, warning=warning)


class Trace:
    """Collects steps and remembers which step last set the replica count."""

    __slots__ = ("setter", "steps")

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.setter: Step | None = None

    def note(self, reason: str, message: Text, *, warning: bool = False) -> None:
        self.steps.append(Step(reason, message, None, warning))

    def set(self, reason: str, message: Text, replicas: int, *, warning: bool = False) -> int:
        step = Step(reason, message, replicas, warning)
        self.steps.append(step)
        self.setter = step
        return replicas
