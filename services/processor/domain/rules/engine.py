"""Evaluating the rule pack, one event at a time, for one person.

``apply_event`` is a pure fold step: (pack, state, event, now) -> Outcome. ``now`` is the
stream clock (the highest recorded_at seen on the partition, this event included), never the
wall clock, so replaying a log gives the same alerts with the same ids and raised-at times.

Order inside one step, and why:
1. fire this person's expectations already past due (due_at < now) BEFORE looking at the event,
   so the result never depends on whether a timer happened to run first;
2. for each rule: withdraw what the event cancels, fulfil what it satisfies, remember it
   if a rule may need it later (markers), then open or raise what it triggers;
3. fire again (a trigger recorded after its own deadline alerts at once), then prune.

Only the rules an event concerns are visited (``relevance.py``): a rule none of whose matchers
hold would do nothing in step 2. When no rule is concerned and nothing is due or aging out, the
state is returned as it was, unchanged and unrebuilt; that is the path of most events.
``apply_event_to_every_rule`` takes none of these shortcuts, so tests can hold them to it.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from services.alerts.events import AlertEvent, alert_id_for
from services.common.events import AgencyEvent
from services.processor.domain.rules.correlation import (
    Seen,
    context_for,
    first_pair,
    pair_key,
    partners,
    triggers_for,
)
from services.processor.domain.rules.deadlines import due_at, fire_due
from services.processor.domain.rules.model import Facts, Rule, RulePack
from services.processor.domain.rules.relevance import (
    LEAD_CHANGE,
    Match,
    changes_lead,
    matched,
    settled,
)
from services.processor.domain.rules.state import (
    ALERTED,
    FULFILLED,
    LIVE,
    OPEN,
    RESOLVED,
    WITHDRAWN,
    Expectation,
    Marker,
    Outcome,
    PersonRuleState,
)
from services.processor.domain.rules.vocabulary import facts_of
from services.processor.domain.rules.wording import (
    describe_event,
    evidence,
    explanation,
    lateness,
    raised,
    resolved,
    route,
    stamp,
)

__all__ = ["Expectation", "Marker", "Outcome", "PersonRuleState", "apply_event", "fire_due",
           "outside_window"]


def apply_event(pack: RulePack, state: PersonRuleState, event: AgencyEvent,
                now: datetime, history_of: str | None = None) -> Outcome:
    """``history_of``: the agency whose backfilled history this event is (deadlines it opens
    are held until that backfill is finished; services/processor/domain/backfill.py), or None."""
    now = max(now, event.recorded_at)
    interests = pack.interested_in(event.event_type)
    if not interests and event.event_type != LEAD_CHANGE[0] and settled(pack, state, now):
        return _unchanged(state)  # most events: no rule reads this type, and no clock is due
    seen = Seen(event.event_id, event.occurred_at, event.recorded_at, facts_of(event),
                event.source.agency)
    concerned = matched(interests, seen.facts)
    if not concerned and not changes_lead(seen.facts) and settled(pack, state, now):
        return _unchanged(state)  # a type some rule reads, but none of their conditions hold
    return _evaluate(pack, state, seen, now, concerned, history_of)


def apply_event_to_every_rule(pack: RulePack, state: PersonRuleState, event: AgencyEvent,
                              now: datetime, history_of: str | None = None) -> Outcome:
    """``apply_event`` without its shortcuts (the event-type index, skipped rules, the
    unchanged state returned as it was): every matcher of every rule is tried and every rule
    visited. The reference that tests hold the shortcuts to."""
    seen = Seen(event.event_id, event.occurred_at, event.recorded_at, facts_of(event),
                event.source.agency)
    concerned = [(rule, Match.of(rule, seen.facts)) for rule in pack.rules]
    return _evaluate(pack, state, seen, max(now, event.recorded_at), concerned, history_of)


def _evaluate(pack: RulePack, state: PersonRuleState, seen: Seen, now: datetime,
              concerned: list[tuple[Rule, Match]], history_of: str | None = None) -> Outcome:
    run = _Run(pack, state, now, history_of)
    run.fire()
    run.note_lead_professional(seen)
    for rule, match in concerned:
        run.cancel(rule, seen, match)
        run.fulfil(rule, seen, match)
        run.remember(rule, seen, match)
        run.trigger(rule, seen, match)
    run.fire()
    return run.outcome()


def _unchanged(state: PersonRuleState) -> Outcome:
    return Outcome(state, [], [], [], [])


def outside_window(rule: Rule, expectation: Expectation, facts: Facts,
                   occurred_at: datetime) -> str | None:
    """Why an event that the rule's expect matcher accepts still cannot meet ``expectation``
    (it concerns another tracked thing, or happened before the window opened, the rule's
    lookback included), in words; None when it meets it (on time or late: ``satisfy`` tells
    which). The one decision, for the engine and for explanations (``trace.py``)."""
    assert rule.expect is not None and rule.window is not None
    keys = expectation.keys
    if not rule.expect.correlates(facts, keys):
        return "about another " + " and ".join(
            f"{p.split('.', 1)[-1]} than the trigger's" for p in rule.expect.same
            if facts.get(p) is None or facts.get(p) != keys.get(p))
    opened = expectation.window_start - rule.window.lookback
    if occurred_at < opened:
        return (f"outside the window: it happened on {stamp(occurred_at)}, before the window "
                f"opened on {stamp(opened)}")
    return None


class _Run:
    """The working copy of one person's state while one event is applied."""

    def __init__(self, pack: RulePack, state: PersonRuleState, now: datetime,
                 history_of: str | None = None) -> None:
        self.pack, self.now, self.person = pack, now, state.person_key
        self.history_of = history_of  # deadlines this event opens are held by its backfill
        self.expectations = {e.expectation_id: e for e in state.expectations}
        self.markers = list(state.markers)
        self.marker_keys: set[tuple[str, str, str, str]] | None = None  # made when needed
        self.lead_team, self.lead_since = state.lead_team, state.lead_team_since
        self.changed: dict[str, Expectation] = {}
        self.new_markers: list[Marker] = []
        self.alerts: list[AlertEvent] = []
        self.kept: tuple[tuple[str, object], ...] | None = None  # the event's facts to remember

    def put(self, expectation: Expectation) -> None:
        self.expectations[expectation.expectation_id] = expectation
        self.changed[expectation.expectation_id] = expectation

    def live(self, rule: Rule) -> list[Expectation]:
        return [e for e in self.expectations.values() if e.rule_id == rule.id and e.status in LIVE]

    def markers_of(self, rule: Rule, role: str) -> list[Marker]:
        return [m for m in self.markers if m.rule_id == rule.id and m.role == role]

    def fire(self) -> None:
        for expectation, alert in fire_due(self.pack, self.expectations.values(), self.now):
            self.put(expectation)
            self.alerts.append(alert)

    def note_lead_professional(self, seen: Seen) -> None:
        facts = seen.facts
        if changes_lead(facts) and (self.lead_since is None
                                     or seen.occurred_at >= self.lead_since):
            self.lead_team = str(facts.get("source.team") or facts.get("source.agency"))
            self.lead_since = seen.occurred_at

    # --- closing expectations ---------------------------------------------------------------

    def close(self, expectation: Expectation, status: str, reason: str, by: str,
              known_at: datetime | None = None) -> None:
        """Close ``expectation``; an alert it raised is resolved. The closing instant is never
        before the raise, nor before the closing event was recorded: a fulfilment that
        arrived before its trigger makes the alert raised at the deadline and resolved at
        that same instant, not at the (earlier) moment the trigger arrived."""
        at = max(self.now, expectation.raised_at or self.now, known_at or self.now)
        done = dataclasses.replace(expectation, status=status, closed_at=at,
                                   resolution=reason,
                                   fulfilled_by=by if status != WITHDRAWN else None)
        self.put(done)
        if expectation.status == ALERTED:
            self.alerts.append(resolved(done, at, reason, by))

    def cancel(self, rule: Rule, seen: Seen, match: Match) -> None:
        if rule.cancel is None or not match.cancel:
            return
        for expectation in self.live(rule):
            if (rule.cancel.correlates(seen.facts, expectation.keys)
                    and seen.occurred_at >= expectation.window_start):
                what = describe_event(seen.facts, seen.occurred_at)
                self.close(expectation, WITHDRAWN, f"withdrawn: {what}", seen.event_id)

    def fulfil(self, rule: Rule, seen: Seen, match: Match) -> None:
        if rule.expect is None or rule.window is None or not match.expect:
            return
        for expectation in self.live(rule):
            if outside_window(rule, expectation, seen.facts, seen.occurred_at) is None:
                self.satisfy(expectation, seen)

    def satisfy(self, expectation: Expectation, seen: Seen) -> None:
        what = describe_event(seen.facts, seen.occurred_at)
        on_time = seen.occurred_at <= expectation.due_at
        if expectation.status == OPEN and on_time:
            self.put(dataclasses.replace(expectation, status=FULFILLED, closed_at=self.now,
                                         fulfilled_by=seen.event_id, resolution=f"met: {what}"))
            return
        if expectation.status == OPEN:  # happened after the deadline: the gap was real
            at = expectation.alert_at
            expectation = dataclasses.replace(expectation, status=ALERTED, raised_at=at)
            self.alerts.append(raised(expectation, at))
        reason = (f"fulfilled before the deadline but reported late: {what}" if on_time else
                  f"resolved late: {what}, "
                  f"{lateness(seen.occurred_at, expectation.due_at)} after the deadline")
        self.close(expectation, RESOLVED, reason, seen.event_id, seen.recorded_at)

    # --- remembering and triggering ---------------------------------------------------------

    def remember(self, rule: Rule, seen: Seen, match: Match) -> None:
        if self.marker_keys is None:
            self.marker_keys = {(m.rule_id, m.role, m.agency, m.event_id) for m in self.markers}
        for role in match.roles(rule):
            if (rule.id, role, seen.agency, seen.event_id) not in self.marker_keys:
                marker = Marker(self.person, rule.id, role, seen.event_id, seen.occurred_at,
                                self.kept_facts(seen), seen.recorded_at, seen.agency)
                self.marker_keys.add((rule.id, role, seen.agency, seen.event_id))
                self.markers.append(marker)
                self.new_markers.append(marker)

    def kept_facts(self, seen: Seen) -> tuple[tuple[str, object], ...]:
        """The facts a marker keeps: the same for every rule, so worked out once."""
        if self.kept is None:
            facts = seen.facts
            self.kept = tuple([(p, v) for p in self.pack.remembered_in_order
                               if (v := facts.get(p)) is not None])
        return self.kept

    def trigger(self, rule: Rule, seen: Seen, match: Match) -> None:
        if rule.kind == "context" and match.context:  # a late context completes triggers
            for trigger, context in triggers_for(rule, seen, self.markers_of(rule, "trigger")):
                self.raise_now(rule, trigger, context=context)
        if not match.trigger:
            return
        if rule.kind == "deadline":
            self.open_deadline(rule, seen)
        elif rule.kind == "immediate":
            self.raise_now(rule, seen)
        elif rule.kind == "pair":
            self.pair_up(rule, seen)
        elif (risk := context_for(rule, seen, self.markers_of(rule, "context"))) is not None:
            window, words = risk
            self.raise_now(rule, seen, context=words, known_at=window.recorded_at)

    def pair_up(self, rule: Rule, seen: Seen) -> None:
        """One open alert per person and pair of services: the first pair raises it; every
        later decline that pairs up (and the partners it pairs with) joins it as evidence."""
        found = partners(rule, seen, self.markers_of(rule, "half"))
        if not found:
            return
        key = pair_key(rule, seen.facts)
        alert = next((e for e in self.live(rule)
                      if e.status == ALERTED and e.keys.get("pair") == key), None)
        if alert is None:
            later, earlier = first_pair(seen, found)
            alert = self.raise_now(
                rule, later, earlier.occurred_at,
                f"paired with {describe_event(earlier.facts, earlier.occurred_at)}",
                known_at=earlier.recorded_at, keys={"pair": key},
                stands_on=(later.reference, earlier.reference))
            if alert is None:
                return  # the pair's alert was raised once and has closed since
        joining = [s for s in (seen, *found) if s.reference not in alert.evidence]
        if joining:
            self.add_evidence(alert, sorted(joining, key=lambda s: s.order))

    def add_evidence(self, alert: Expectation, joining: list[Seen]) -> None:
        # due_at follows the latest event the alert stands on, so the alert is kept (and
        # found by the next decline) for as long after it as after the first pair.
        at = max(self.now, alert.raised_at or self.now, *(s.recorded_at for s in joining))
        latest = max(s.occurred_at for s in joining)
        updated = dataclasses.replace(
            alert, evidence=(*alert.evidence, *(s.reference for s in joining)),
            due_at=max(alert.due_at, latest))
        self.put(updated)
        for s in joining:
            self.alerts.append(evidence(updated, at, s.agency, s.event_id,
                                        describe_event(s.facts, s.occurred_at)))

    def new(self, expectation_id: str, rule: Rule, seen: Seen, due: datetime, status: str,
            keys: dict[str, object], has_deadline: bool, context: str = "",
            window_start: datetime | None = None,
            raised_at: datetime | None = None) -> Expectation:
        trigger = describe_event(seen.facts, seen.occurred_at)
        return Expectation(
            expectation_id=expectation_id, rule_id=rule.id,
            rule_version=rule.version, person_key=self.person, trigger_event_id=seen.event_id,
            window_start=window_start or seen.occurred_at, due_at=due, status=status,
            correlation=tuple(keys.items()), duty_team=route(rule, seen.facts, self.lead_team),
            severity=rule.severity, title=rule.title,
            explanation=explanation(rule, trigger, due if has_deadline else None, context),
            expected=rule.expected, source_reference=rule.source, has_deadline=has_deadline,
            known_at=seen.recorded_at, raised_at=raised_at,
            area=str(seen.facts.get("source.area") or "") or None)

    def raise_now(self, rule: Rule, seen: Seen, window_start: datetime | None = None,
                  context: str = "", known_at: datetime | None = None,
                  keys: dict[str, object] | None = None,
                  stands_on: tuple[str, ...] = ()) -> Expectation | None:
        """Raise an alert on ``seen`` at once; None when this trigger raised one before.

        Raised when the last event it stands on was recorded (``seen`` and ``known_at``, the
        other half or the context): under the worker's clock a half that arrives late runs
        at its own, earlier, recorded time, and the alert must not predate what it knew."""
        expectation_id = alert_id_for(rule.id, seen.agency, seen.event_id)
        if expectation_id in self.expectations:
            return None  # the same trigger again: nothing changes
        at = max(self.now, seen.recorded_at, known_at or self.now)
        expectation = self.new(expectation_id, rule, seen, seen.occurred_at, ALERTED,
                               keys or {}, False, context, window_start, raised_at=at)
        expectation = dataclasses.replace(expectation, evidence=stands_on)
        self.put(expectation)
        self.alerts.append(raised(expectation, at))
        return expectation

    def open_deadline(self, rule: Rule, seen: Seen) -> None:
        assert rule.expect is not None and rule.window is not None
        expectation_id = alert_id_for(rule.id, seen.agency, seen.event_id)
        if expectation_id in self.expectations:
            return  # the same trigger again: nothing changes
        due = due_at(rule.window, seen)
        if due is None or self.supersede(rule, seen, due):
            return
        track = rule.cancel.same if rule.cancel is not None else ()
        keys = {p: seen.facts.get(p) for p in (*rule.expect.same, *track)}
        expectation = dataclasses.replace(
            self.new(expectation_id, rule, seen, due, OPEN, keys, True),
            history_of=self.history_of)
        self.put(expectation)
        for marker in sorted(self.markers_of(rule, "cancel"), key=lambda m: m.occurred_at):
            if (rule.cancel is not None and rule.cancel.correlates(marker.facts, keys)
                    and marker.occurred_at >= seen.occurred_at):  # cancelled before it arrived
                what = describe_event(marker.facts, marker.occurred_at)
                self.close(expectation, WITHDRAWN, f"withdrawn: {what}", marker.event_id)
                return
        candidates = [m for m in self.markers_of(rule, "fulfil")
                      if not seen.same_event(m)
                      and outside_window(rule, expectation, m.facts, m.occurred_at) is None]
        if candidates:  # it arrived before its trigger (out of order) or within the lookback
            first = min(candidates, key=lambda m: (m.occurred_at, m.event_id, m.agency))
            self.satisfy(expectation, Seen.of(first))

    def supersede(self, rule: Rule, seen: Seen, due: datetime) -> bool:
        """True when this trigger only restates or moves a live expectation for the same
        tracked thing (the same transition id; the same referral id)."""
        assert rule.window is not None
        if rule.cancel is None or not rule.cancel.same:
            return False
        handled = False
        for old in [e for e in self.live(rule) if rule.cancel.correlates(seen.facts, e.keys)]:
            handled = True
            if rule.window.of is None or seen.occurred_at < old.window_start:
                continue  # the first trigger's deadline stands; an older schedule changes nothing
            if old.status == OPEN and due != old.due_at:
                trigger = describe_event(seen.facts, seen.occurred_at)
                self.put(dataclasses.replace(old, due_at=due, known_at=seen.recorded_at,
                                             explanation=explanation(rule, trigger, due)))
            elif old.status == ALERTED and due > self.now:  # deadline moved into the future
                what = describe_event(seen.facts, seen.occurred_at)
                self.close(old, WITHDRAWN, f"deadline moved to {stamp(due)} by {what}",
                           seen.event_id)
                handled = False  # a new expectation, with a new alert id, takes over
        return handled

    def outcome(self) -> Outcome:
        keep, pruned = self.aged_markers()
        self.forget_closed()
        state = PersonRuleState(self.person, tuple(self.expectations.values()), tuple(keep),
                                self.lead_team, self.lead_since)
        new_markers, gone = self.new_markers, pruned
        if pruned:  # rare: most events age nothing out, so skip the bookkeeping
            kept_ids = {id(m) for m in keep}
            new_markers = [m for m in self.new_markers if id(m) in kept_ids]
            gone = [m for m in pruned if m not in self.new_markers]
        return Outcome(state, list(self.changed.values()), new_markers, self.alerts, gone)

    def aged_markers(self) -> tuple[list[Marker], list[Marker]]:
        """(kept, pruned): a marker no rule can need by now is pruned."""
        keep: list[Marker] = []
        pruned: list[Marker] = []
        retention, now = self.pack.retention, self.now
        for marker in self.markers:
            kept_for = retention.get(marker.rule_id)
            old = kept_for is None or marker.occurred_at < now - kept_for
            (pruned if old else keep).append(marker)
        return keep, pruned

    def forget_closed(self) -> None:
        """Drop closed expectations past the horizon (alerted ones: past resolving late)."""
        kept_closed = self.now - self.pack.horizon
        kept_alerted = self.now - self.pack.resolve_late_within
        for expectation in list(self.expectations.values()):
            status = expectation.status
            if status != OPEN and expectation.due_at < (kept_alerted if status == ALERTED
                                                        else kept_closed):
                del self.expectations[expectation.expectation_id]
