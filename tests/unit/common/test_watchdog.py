"""The stall fold: what is stalled, and which recovery is due when."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.common.watchdog import Progress, Reading, Stall, behind_the_end, lag, observe

STALL = 60.0


def run(readings: list[Reading], step: float = 10.0) -> list[list[Stall[str]]]:
    """Observe one partition every `step` seconds; the stalls of each observation."""
    state: dict[str, Progress] = {}
    seen: list[list[Stall[str]]] = []
    for i, reading in enumerate(readings):
        state, stalls = observe(state, i * step, {"p": reading}, STALL)
        seen.append(stalls)
    return seen


def test_lag_is_the_records_beyond_the_position() -> None:
    assert lag(150, 40) == 110
    assert lag(40, 40) == 0
    assert lag(0, 40) == 0  # a replaced log is no backlog (behind_the_end finds it)


def test_a_stuck_position_with_records_waiting_escalates() -> None:
    stalls = run([Reading(5, 100)] * 20)
    actions = [(i * 10, s[0].action) for i, s in enumerate(stalls) if s]
    assert actions[0] == (60, "reposition")            # stalled for the stall time
    assert [a for a in actions if a[1] == "restart"][:2] == [(120, "restart"),
                                                            (180, "restart")]
    assert all(s[0].lag == 95 and s[0].position == 5 for s in stalls if s)
    assert [a for _, a in actions[1:6]] == [None] * 5   # waiting for the last recovery


def test_moving_again_ends_the_stall_and_its_escalation() -> None:
    stalls = run([Reading(5, 100)] * 8 + [Reading(6, 100)] + [Reading(6, 100)] * 7)
    assert stalls[6][0].action == "reposition"
    assert stalls[8] == []
    assert stalls[13] == []
    assert stalls[14][0].action == "reposition"        # a new stall starts from the beginning


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 50)), min_size=1,
                max_size=40))
def test_a_partition_with_nothing_to_read_is_never_stalled(steps: list[tuple[int, int]]
                                                           ) -> None:
    """However long the position stays put, no lag means no stall."""
    assert all(s == [] for s in run([Reading(p, p) for p, _ in steps]))


@given(st.lists(st.integers(1, 500), min_size=1, max_size=40))
def test_a_partition_that_moves_every_time_is_never_stalled(increments: list[int]) -> None:
    positions = [sum(increments[:i + 1]) for i in range(len(increments))]
    assert all(s == [] for s in run([Reading(p, p + 1000) for p in positions], step=1000.0))


@given(st.integers(0, 10_000), st.integers(1, 10_000), st.floats(1.0, 1e6))
def test_nothing_is_done_before_the_stall_time(position: int, waiting: int,
                                                stall_after: float) -> None:
    reading = {"p": Reading(position, position + waiting)}
    state, first = observe({}, 0.0, reading, stall_after)
    _, early = observe(state, stall_after * 0.999, reading, stall_after)
    _, due = observe(state, stall_after, reading, stall_after)
    assert first == early == []
    assert [s.action for s in due] == ["reposition"]


def test_a_partition_no_longer_assigned_is_forgotten() -> None:
    state, _ = observe({}, 0.0, {"p": Reading(1, 9), "q": Reading(1, 9)}, STALL)
    state, _ = observe(state, 1.0, {"q": Reading(1, 9)}, STALL)
    assert set(state) == {"q"}


@given(st.dictionaries(st.integers(0, 7), st.tuples(st.integers(0, 10**6), st.integers(0, 10**6))))
def test_a_log_ending_before_its_stored_position_is_named_and_nothing_else(
        readings: dict[int, tuple[int, int]]) -> None:
    found = behind_the_end({p: Reading(position, end) for p, (position, end) in readings.items()})
    assert found == [p for p, (position, end) in readings.items() if end < position]
    assert behind_the_end({0: Reading(300, 50), 1: Reading(50, 50), 2: Reading(10, 90)}) == [0]
