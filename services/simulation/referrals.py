"""Closed-loop referral chains: made -> acknowledged -> accepted | declined -> closed.

The sender records ``made`` (and ``withdrawn``); the receiving service records the rest.
Answers come after working-day delays; some referrals are never answered at all, which is
exactly what the referral-SLA rule has to notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.common.events import Referral
from services.simulation.agencies import Agency, local
from services.simulation.recorder import Story

#: Answer time the referrer asks for, in working days, by the kind of service referred to.
SLA_WORKING_DAYS = {"HOUSING": 5, "SUBSTANCE_USE": 5, "MENTAL_HEALTH": 10, "SOCIAL_CARE": 10,
                    "LEAVING_CARE": 5, "VOLUNTARY": 5, "MARAC": 3}
#: What a closed referral achieved, by the kind of service that closes it.
OUTCOMES = {"HOUSING": ("ACCOMMODATED", "PREVENTION_DUTY_ENDED", "RELIEF_DUTY_ENDED"),
            "SUBSTANCE_USE": ("TREATMENT_COMPLETED", "TREATMENT_ENDED"),
            "MENTAL_HEALTH": ("CARE_PLAN_COMPLETED", "STEPPED_DOWN_TO_PRIMARY_CARE"),
            "MARAC": ("ACTIONS_COMPLETED",)}
# (decline reason, weight); CITES_OTHER_NEED_FIRST only from mental health and drug services.
_DECLINES = (("NOT_ELIGIBLE", 25), ("CAPACITY", 20), ("OUT_OF_AREA", 8), ("PERSON_DECLINED", 17),
             ("DUPLICATE", 5), ("OTHER", 10), ("CITES_OTHER_NEED_FIRST", 15))
_DECLINES_OTHERS = tuple(d for d in _DECLINES if d[0] != "CITES_OTHER_NEED_FIRST")
_OTHER_NEED = {"MENTAL_HEALTH": "SUBSTANCE_USE", "SUBSTANCE_USE": "MENTAL_HEALTH"}


@dataclass(frozen=True, slots=True)
class Answer:
    """What became of a referral (as far as the window shows)."""

    referral_id: str
    receiver: Agency
    status: str               # accepted, declined, withdrawn, waiting or unanswered
    decided_at: datetime | None


def refer(story: Story, sender: Agency, to_kind: str, at: datetime, reason: str, *,
          fate: str | None = None, cites: str | None = None,
          sender_team: str | None = None) -> Answer:
    """Send a referral and play out the receiving service's answer.

    ``fate`` forces the outcome (accepted, declined, withdrawn, waiting, unanswered); ``cites`` forces a
    decline that names another need first (the ping-pong of "stuck between services").
    """
    rng = story.rng
    receiver = local(story.person.area, to_kind)
    referral_id = story.new_id("ref")
    sla = SLA_WORKING_DAYS.get(to_kind, 10)

    def payload(**fields: object) -> Referral:
        return Referral(referral_id, receiver.agency_id, to_kind, **fields)  # type: ignore[arg-type]

    made = story.record(sender, "referral.made", at, payload(reason=reason, sla_working_days=sla),
                        about_kind=to_kind, team=sender_team)
    if fate is None:
        r = rng.random()
        fate = ("unanswered" if r < 0.07 else "withdrawn" if r < 0.10 else "waiting" if r < 0.14
                else "declined" if r < 0.31 else "accepted")
    if fate == "unanswered":
        return Answer(referral_id, receiver, fate, None)
    now = at
    if rng.random() < 0.9:  # some services go straight to a decision without acknowledging
        now = story.working_days_later(now, _answer_delay(story))
        story.record(receiver, "referral.acknowledged", now, payload(), causation_id=made)
    if fate == "withdrawn":  # the referrer withdraws it (moved on, other help found)
        now = story.days_later(now, 3, 20)
        story.record(sender, "referral.withdrawn", now, payload(), about_kind=to_kind,
                     causation_id=made, team=sender_team)
        return Answer(referral_id, receiver, fate, now)
    if fate == "waiting":  # acknowledged (perhaps), then no decision
        return Answer(referral_id, receiver, fate, None)
    now = story.working_days_later(now, _answer_delay(story) + rng.randrange(3))
    decided_by = f"{receiver.team}-triage"
    if fate == "declined":
        reason_code = _decline_reason(story, to_kind) if cites is None else "CITES_OTHER_NEED_FIRST"
        if reason_code == "CITES_OTHER_NEED_FIRST" and cites is None:
            cites = _OTHER_NEED[to_kind]
        story.record(receiver, "referral.declined", now,
                     payload(decline_reason=reason_code, cites_service_kind=cites,
                             decided_by=decided_by), causation_id=made)
        return Answer(referral_id, receiver, fate, now)
    story.record(receiver, "referral.accepted", now, payload(decided_by=decided_by),
                 causation_id=made)
    if to_kind in OUTCOMES and rng.random() < 0.6:
        closed = story.days_later(now, 28, 120)
        story.record(receiver, "referral.closed", closed,
                     payload(outcome=rng.choice(OUTCOMES[to_kind])), causation_id=made)
    return Answer(referral_id, receiver, "accepted", now)


def _answer_delay(story: Story) -> int:
    """Working days to answer: often the same or next day, with a long tail past any SLA."""
    r = story.rng.random()
    if r < 0.4:
        return 0
    if r < 0.7:
        return 1
    if r < 0.9:
        return story.rng.randint(2, 3)
    return story.rng.randint(4, 12)


def _decline_reason(story: Story, to_kind: str) -> str:
    return story.pick(_DECLINES if to_kind in _OTHER_NEED else _DECLINES_OTHERS)
