"""``evolve`` and ``build``: the domain's frozen dataclasses copied without ``__init__``,
yet the same values ``dataclasses.replace`` and the constructor give."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridbot.domain import Case, ChatKind, Incoming, Priority, Status, build, evolve
from tests.test_store import T0, make_case

CHANGES = st.fixed_dictionaries({}, optional={
    "level": st.integers(0, 3),
    "status": st.sampled_from(list(Status)),
    "priority": st.sampled_from(list(Priority)),
    "text": st.text(max_size=20),
    "assignee_id": st.none() | st.text(max_size=8),
    "wake_at": st.none() | st.integers(0, 10_000).map(lambda m: T0 + timedelta(minutes=m)),
})


@given(changes=CHANGES)
def test_evolve_is_replace(changes: dict[str, object]) -> None:
    case = make_case()
    evolved = evolve(case, **changes)
    replaced = dataclasses.replace(case, **changes)
    assert evolved == replaced
    assert hash(evolved) == hash(replaced)
    assert type(evolved) is Case
    assert case == make_case()  # the original is untouched


def test_evolve_refuses_what_is_no_field_and_stays_frozen() -> None:
    case = make_case()
    with pytest.raises(TypeError, match="no field nope"):
        evolve(case, nope=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        evolve(case, level=1).level = 2  # type: ignore[misc]


def test_build_is_the_constructor_given_every_field() -> None:
    case = make_case(level=2)
    values = {f.name: getattr(case, f.name) for f in dataclasses.fields(Case)}
    built = build(Case, **values)
    assert built == case and built is not case
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.level = 1  # type: ignore[misc]
    # A field left out takes its default, as the constructor gives it.
    values.pop("incident")
    assert build(Case, **values) == Case(**values)


def test_a_dataclass_with_slots_goes_through_replace() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Point:
        x: int
        y: int

    assert evolve(Point(1, 2), y=3) == Point(1, 3)
    assert build(Point, x=1, y=2) == Point(1, 2)
    message = Incoming(platform="console", chat_id="c", chat_kind=ChatKind.GROUP,
                       sender_id="s", sender_name="S", text="hi", message_id="m1")
    assert evolve(message, text="ho") == dataclasses.replace(message, text="ho")
