"""`POST /v1/operations/what-if`: the rule what-if over the read API, for operations staff
(the same fold and the same JSON as `joinedup what-if --json`), recorded in the access audit
(action ``what_if``).

Bounded: it runs in the request only while the archive holds at most
``JOINEDUP_WHAT_IF_API_MAX_EVENTS`` events (default 100,000, about ten seconds of folding);
above that it is refused (422) with a pointer to the command line, which has no limit.

No ``from __future__ import annotations`` here: the routes' annotations are evaluated where
they are defined, so the `Operator` dependency can be imported inside the function (the
operations module imports this one to list it in ``ROUTERS``)."""

from datetime import datetime
from typing import Any, NoReturn

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from projections.queries import replay as sql
from services.operations.dry_run import archived, what_if_report
from services.processor.bootstrap import load_pack
from services.processor.domain.rules import RuleFileError, load_rule_pack
from services.reads.adapters import audit_log
from services.reads.domain.audit import Caller, action_record
from services.reads.entrypoints.http import ERRORS
from services.reads.lookup import ReadRefused

ACTION = "what_if"
PURPOSE = "investigation"
BATCH = 1000


class WhatIfIn(BaseModel):
    rules: str = Field(min_length=1, max_length=1_000_000,
                       description="the changed rule file, as TOML text")
    rule: str | None = Field(default=None, max_length=200, description="one rule's id only")
    since: datetime | None = Field(default=None, description="count only alerts raised at "
                                   "or after this moment (history before it is still folded)")
    at: datetime | None = Field(default=None, description="judge deadlines at this moment "
                                "(default: the stream clock's end)")


class Tally(BaseModel):
    alerts: int
    people: int = Field(description="distinct people (counted, never named)")


class WouldBeDue(BaseModel):
    current: Tally
    changed: Tally


class RuleOut(BaseModel):
    rule: str
    current: Tally = Field(description="alerts the current pack raises")
    changed: Tally = Field(description="alerts the changed pack raises")
    new: Tally = Field(description="raised by the changed pack only")
    gone: Tally = Field(description="raised by the current pack only")
    deadline_changed: Tally = Field(description="raised by both, with another deadline")
    severity_changed: Tally = Field(description="raised by both, with another severity")
    would_be_due: WouldBeDue = Field(description="expectations still open at `now`")


class WhatIfOut(BaseModel):
    events: int = Field(description="events folded")
    # ISO 8601 text, exactly as `joinedup what-if --json` prints it
    now: str = Field(description="the moment deadlines were judged at (ISO 8601)")
    since: str | None = Field(description="alerts raised from this moment were counted")
    current_pack: str
    changed_pack: str
    differs: bool
    rules: list[RuleOut]


def what_if_routes() -> APIRouter:
    from services.operations.entrypoints.http import Operator

    router = APIRouter(prefix="/v1/operations", tags=["operations"], responses=ERRORS)

    @router.post("/what-if", operation_id="ruleWhatIf", response_model=WhatIfOut)
    async def what_if(body: WhatIfIn, who: Operator, request: Request) -> dict[str, Any]:
        """Fold a changed rule file over the archived history beside the current one and
        answer the difference in alerts per rule (new, gone, changed deadline or severity,
        would be due), counted. Nothing live changes. Refused (422) for an invalid rule file
        (every problem with its line and field) or more history than a request may fold."""
        side = request.app.state.side
        settings = side.settings
        if "\n" not in body.rules and "=" not in body.rules:  # else it would be read as a path
            await _refuse(side.pool, who, "not a rule file (TOML text)")
        try:
            changed = load_rule_pack(body.rules)
        except RuleFileError as exc:
            await _refuse(side.pool, who, f"the changed rule file is invalid: {exc}")
        topic = settings.topics.person_events
        events = await side.pool.fetchval(sql.ARCHIVED, topic)
        if events > settings.what_if_api_max_events:
            await _refuse(side.pool, who, f"{events:,} archived events is more than a request "
                          f"folds ({settings.what_if_api_max_events:,}): run `joinedup "
                          f"what-if` at the command line")
        try:
            # small batches: the fold runs in the API's event loop, which serves other
            # requests between two batches (about 70 ms of folding each)
            found = await what_if_report(side.pool, archived(topic, None, BATCH),
                                         load_pack(settings),
                                         changed, rule=body.rule, since=body.since,
                                         at=body.at)
        except ValueError as exc:  # an unknown rule id, no history
            await _refuse(side.pool, who, str(exc))
        async with side.pool.acquire() as conn:
            await audit_log.write(conn, action_record(who, ACTION, None, PURPOSE, "ok", {
                "changed_pack": changed.version, "rule": body.rule, "since": body.since,
                "events": found["events"], "differs": found["differs"]}))
        return found

    return router


async def _refuse(pool: Any, who: Caller, why: str) -> NoReturn:
    async with pool.acquire() as conn:
        await audit_log.write(conn, action_record(who, ACTION, None, PURPOSE, "refused",
                                                  {"why": why[:500]}))
    raise ReadRefused("invalid", why)
