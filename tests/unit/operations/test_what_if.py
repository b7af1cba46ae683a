"""The rule what-if's pure part: diffing two packs' alerts (matched by alert id, counted per
rule, people counted not named) and folding two packs side by side; the replay's cut of a
batch at a moment."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.common.identifiers import make_nhs_number
from services.operations.replay import runs
from services.operations.what_if import PackRun, Pending, Raised, compare, report
from services.processor.domain.rules import default_pack_path, load_rule_pack
from tests import factories as f

PACK = load_rule_pack(default_pack_path())
RULES = [r.id for r in PACK.rules]
T = datetime(2026, 3, 2, tzinfo=UTC)
H = timedelta(hours=1)

alerts = st.builds(
    Raised, alert_id=st.sampled_from([f"a{i}" for i in range(12)]),
    rule_id=st.sampled_from(RULES[:3]), person_key=st.sampled_from(["p1", "p2", "p3", "p4"]),
    at=st.sampled_from([T, T + H, T + 2 * H]),
    due_at=st.sampled_from([None, T, T + H]), severity=st.sampled_from(["high", "low"]))
pendings = st.builds(Pending, expectation_id=st.sampled_from([f"e{i}" for i in range(6)]),
                     rule_id=st.sampled_from(RULES[:3]), person_key=st.sampled_from(["p1", "p5"]),
                     due_at=st.just(T + 9 * H))


def run(raised: list[Raised], pending: list[Pending] = ()) -> PackRun:  # type: ignore[assignment]
    # an alert id is one rule's (uuid5 of rule and trigger): keep the first rule seen for it
    kept: dict[str, Raised] = {}
    for r in raised:
        kept.setdefault(r.alert_id, r)
    return PackRun(PACK, raised=kept, pending={p.expectation_id: p for p in pending})


@given(st.lists(alerts), st.lists(pendings))
def test_a_pack_compared_with_itself_differs_in_nothing(raised: list[Raised],
                                                        pending: list[Pending]) -> None:
    same = run(raised, pending)
    for d in compare(same, same):
        assert not d.differs
        assert d.current == d.changed and d.new.alerts == d.gone.alerts == 0


@given(st.lists(alerts), st.lists(alerts))
def test_new_and_gone_are_the_alert_ids_only_one_pack_raised(mine: list[Raised],
                                                             theirs: list[Raised]) -> None:
    current, changed = run(mine), run(theirs)
    for d in compare(current, changed):
        ids = {k for k, r in current.raised.items() if r.rule_id == d.rule_id}
        other = {k for k, r in changed.raised.items() if r.rule_id == d.rule_id}
        assert d.current.alerts == len(ids) and d.changed.alerts == len(other)
        assert d.new.alerts == len(other - ids) and d.gone.alerts == len(ids - other)
        assert d.current.alerts - d.gone.alerts == d.changed.alerts - d.new.alerts
        both = ids & other
        assert d.deadline_changed.alerts == sum(
            current.raised[k].due_at != changed.raised[k].due_at for k in both)
        for tally in (d.current, d.changed, d.new, d.gone, d.deadline_changed):
            assert tally.people <= tally.alerts
    swapped = {d.rule_id: d for d in compare(changed, current)}
    for d in compare(current, changed):
        assert swapped[d.rule_id].new == d.gone and swapped[d.rule_id].gone == d.new


@given(st.lists(alerts), st.lists(alerts), st.sampled_from(RULES[:3]))
def test_one_rule_and_a_moment_narrow_what_is_counted(mine: list[Raised], theirs: list[Raised],
                                                      rule: str) -> None:
    differences = compare(run(mine), run(theirs), rule=rule, since=T + H)
    assert [d.rule_id for d in differences] == [rule]
    counted = {r.alert_id for r in run(mine).raised.values()
               if r.rule_id == rule and r.at >= T + H}
    assert differences[0].current.alerts == len(counted)


@given(st.lists(alerts, min_size=1), st.lists(alerts))
def test_the_report_counts_and_never_names_a_person(mine: list[Raised],
                                                    theirs: list[Raised]) -> None:
    differences = compare(run(mine), run(theirs))
    text = json.dumps(report(differences, events=3, now=T, since=None, current=PACK,
                             changed=PACK))
    assert not any(p in text for p in ("p1", "p2", "p3", "p4"))
    assert json.loads(text)["rules"][0]["rule"] == RULES[0]


def _shortened() -> PackRun:
    text = default_pack_path().read_text()
    head, rule, rest = text.partition('id = "mh-72h-follow-up"')
    return PackRun(load_rule_pack(head + rule + rest.replace('within = "72h"',
                                                              'within = "24h"', 1)))


def test_both_packs_fold_the_same_events_and_a_shorter_window_raises_the_late_ones() -> None:
    rng = random.Random(3)
    late, never, on_time = (make_nhs_number(rng) for _ in range(3))
    events = [f.transition("occurred", "MENTAL_HEALTH_DISCHARGE", source="MENTAL_HEALTH",
                           nhs=p) for p in (late, never, on_time)]
    events += [f.contact("follow_up", source="MENTAL_HEALTH", nhs=late, at=f.T0 + 48 * H),
               f.contact("follow_up", source="MENTAL_HEALTH", nhs=on_time, at=f.T0 + 6 * H)]
    for i, e in enumerate(events):  # filed under a person id, as the archive holds them
        events[i] = e.for_person(e.identifiers[0].value[-4:])
    current, changed = PackRun(PACK), _shortened()
    for pack_run in (current, changed):
        pack_run.fold(events)
        pack_run.finish(f.T0 + 80 * H)
    [d] = compare(current, changed, rule="mh-72h-follow-up")
    assert (d.new.alerts, d.gone.alerts, d.deadline_changed.alerts) == (1, 0, 1)
    assert (d.current.alerts, d.changed.alerts) == (1, 2)
    never_alert = next(r for r in changed.raised.values()
                       if r.rule_id == "mh-72h-follow-up" and r.person_key == never[-4:])
    assert never_alert.due_at == f.T0 + 24 * H and never_alert.at == f.T0 + 24 * H


def test_pending_expectations_are_would_be_due_not_alerts() -> None:
    event = f.transition("occurred", "MENTAL_HEALTH_DISCHARGE", source="MENTAL_HEALTH"
                         ).for_person("p")
    current = PackRun(PACK)
    current.fold([event])
    current.finish(f.T0 + 30 * H)  # past the care plan's 24 h, not the follow-up's 72 h
    [d] = compare(current, current, rule="mh-72h-follow-up")
    assert d.current.alerts == 0 and d.due_current.alerts == 1 and d.due_current.people == 1


@given(st.lists(st.integers(0, 5)), st.integers(0, 5))
def test_a_batch_is_cut_into_runs_before_and_from_the_moment_in_order(hours: list[int],
                                                                      since: int) -> None:
    events = [f.contact("attended", at=f.T0 + h * H) for h in hours]
    cut = list(runs(events, f.T0 + since * H))
    assert [e for _, part in cut for e in part] == events
    for recent, part in cut:
        assert part and all((e.recorded_at >= f.T0 + since * H) == recent for e in part)
    assert all(a[0] != b[0] for a, b in zip(cut, cut[1:], strict=False))
