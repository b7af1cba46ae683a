"""Tokens, bearer headers, outcomes and the client's retry rules (no servers needed)."""

from __future__ import annotations

import httpx
import pytest

from services.common.serde.agency_json import event_to_json
from services.ingest.auth import TOKEN_PREFIX, bearer_token, new_token, token_hash
from services.ingest.client import GatewayUnavailable, JoinedupClient
from services.ingest.domain.outcomes import (
    HTTP_STATUS,
    conflict,
    forbidden,
    in_progress,
    not_written,
)
from tests.factories import referral


def test_tokens_are_random_and_stored_as_sha256() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100 and all(t.startswith(TOKEN_PREFIX) for t in tokens)
    token = tokens.pop()
    assert len(token) > 40
    assert token_hash(token) == token_hash(token) and len(token_hash(token)) == 64
    assert token not in token_hash(token)


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None),
    ("", None), (None, None)])
def test_bearer_header(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_every_outcome_has_a_status_code_and_a_reason_code() -> None:
    assert HTTP_STATUS["accepted"] == 202 and HTTP_STATUS["already_accepted"] == 200
    for outcome in (conflict("e"), forbidden("e"), not_written("e"), in_progress("e")):
        assert outcome.problems and outcome.problems[0].code
        assert not outcome.written
    assert [o.retryable for o in (conflict("e"), not_written("e"), in_progress("e"))] == [
        False, True, True]


async def test_client_retries_503_with_the_same_event_id_then_succeeds() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.read().decode())
        if len(seen) < 3:
            return httpx.Response(503, headers={"Retry-After": "0"},
                                  json={"status": 503, "problems": []})
        return httpx.Response(202, json={"status": "accepted", "event_id": "x",
                                         "partition": 1, "offset": 7})

    event = referral("made")
    async with JoinedupClient("http://gateway", "t", backoff=0.001,
                              transport=httpx.MockTransport(answer)) as client:
        result = await client.publish(event)
    assert (result.status, result.partition, result.offset) == ("accepted", 1, 7)
    assert len(seen) == 3 and len(set(seen)) == 1  # the same body, so the same event id
    assert event.event_id in seen[0]


async def test_client_retries_in_progress_but_not_a_conflict() -> None:
    answers = [
        httpx.Response(409, headers={"Retry-After": "0"}, json={"status": 409, "problems": [
            {"field": "event_id", "reason": "r", "code": "in_progress"}]}),
        httpx.Response(200, json={"status": "already_accepted", "event_id": "x",
                                  "partition": 0, "offset": 3}),
        httpx.Response(409, json={"status": 409, "problems": [
            {"field": "event_id", "reason": "r", "code": "conflict"}]})]

    def answer(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    async with JoinedupClient("http://gateway", "t", backoff=0.001,
                              transport=httpx.MockTransport(answer)) as client:
        retried = await client.publish(referral("made"))
        refused = await client.publish(referral("made"))
    assert (retried.status, retried.offset) == ("already_accepted", 3)
    assert (refused.status, refused.http_status) == ("conflict", 409) and not answers


async def test_client_does_not_retry_refusals_and_gives_up_when_unavailable() -> None:
    calls = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(422, json={"status": 422, "problems": [
            {"field": "event_type", "reason": "r", "code": "unknown_event_type"}]})

    async with JoinedupClient("http://gateway", "t",
                              transport=httpx.MockTransport(refuse)) as client:
        result = await client.publish(referral("made"))
    assert calls == 1 and result.status == "refused" and not result.written

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with JoinedupClient("http://gateway", "t", attempts=3, backoff=0.001,
                              transport=httpx.MockTransport(down)) as client:
        with pytest.raises(GatewayUnavailable):
            await client.publish(referral("made"))


def test_json_form_has_no_nulls_and_names_the_payload_family() -> None:
    body = event_to_json(referral("made"))
    assert body["payload"]["family"] == "referral"
    assert None not in body["payload"].values() and None not in body["source"].values()
