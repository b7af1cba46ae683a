"""The SNS endpoint's edges on a real gateway: a subscription confirmation fetched from a
local stand-in for SNS (only for an SNS URL), the credential as SNS sends it (basic auth,
after a challenge) or as a bearer token, and broken deliveries refused naming the field."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from services.common.settings import Settings
from services.ingest.credentials import create_agency
from services.ingest.entrypoints.hmpps import confirmer, subscription_confirmer
from services.ingest.entrypoints.http import create_app
from services.stack.ports import free_port
from tests.servers import serving

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[2] / "fixtures" / "hmpps"


@dataclass
class StandIn:
    """A local HTTP server standing in for sns.<region>.amazonaws.com."""
    url: str
    status: int = 200
    seen: list[str] = field(default_factory=list)


@pytest.fixture
def sns_stand_in() -> Iterator[StandIn]:
    stand_in = StandIn("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            stand_in.seen.append(self.path)
            self.send_response(stand_in.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        server.shutdown()
        thread.join(5)


class ToStandIn(httpx.AsyncBaseTransport):
    """Sends what would go to SNS to the stand-in (same path and query, plain HTTP)."""

    def __init__(self, base: str) -> None:
        self._base = httpx.URL(base)
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host=self._base.host,
                                            port=self._base.port)
        return await self._inner.handle_async_request(request)


@dataclass
class Gateway:
    url: str
    token: str


@pytest.fixture
async def gateway(migrated: Settings, sns_stand_in: StandIn) -> AsyncIterator[Gateway]:
    settings = migrated.model_copy(update={"hmpps_intake": False})
    token = await create_agency(settings, "hmpps", "HMPPS", "PROBATION")
    app = create_app(settings, migrate=False)
    app.dependency_overrides[subscription_confirmer] = lambda: confirmer(
        ToStandIn(sns_stand_in.url))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                                           log_config=None))
    with serving(server, "gateway", port) as url:
        yield Gateway(url, token)


def body(name: str, **changes: Any) -> str:
    return json.dumps({**json.loads((FIXTURES / f"{name}.json").read_text()), **changes})


def basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"hmpps:{token}".encode()).decode()}


async def post(gateway: Gateway, content: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        return await client.post("/v1/hmpps/sns", content=content, headers={
            "Content-Type": "text/plain; charset=UTF-8", **headers})


async def test_a_subscription_is_confirmed_by_fetching_the_sns_url(
        gateway: Gateway, sns_stand_in: StandIn) -> None:
    answer = await post(gateway, body("sns-subscription-confirmation"), basic(gateway.token))
    assert (answer.status_code, answer.json()["status"]) == (200, "confirmed")
    assert len(sns_stand_in.seen) == 1
    assert sns_stand_in.seen[0].startswith("/?Action=ConfirmSubscription&TopicArn=")


async def test_a_confirmation_sns_refuses_is_answered_502_so_sns_sends_it_again(
        gateway: Gateway, sns_stand_in: StandIn) -> None:
    sns_stand_in.status = 403
    answer = await post(gateway, body("sns-subscription-confirmation"), basic(gateway.token))
    assert answer.status_code == 502
    assert answer.json()["problems"][0]["code"] == "confirmation_failed"


async def test_a_confirmation_url_elsewhere_is_refused_and_never_fetched(
        gateway: Gateway, sns_stand_in: StandIn) -> None:
    forged = body("sns-subscription-confirmation",
                  SubscribeURL="https://attacker.example/?Action=ConfirmSubscription")
    answer = await post(gateway, forged, basic(gateway.token))
    assert answer.status_code == 422
    assert answer.json()["problems"][0]["field"] == "SubscribeURL"
    assert sns_stand_in.seen == []


async def test_sns_is_challenged_for_basic_auth_and_a_bearer_token_works_too(
        gateway: Gateway) -> None:
    unauthenticated = await post(gateway, body("sns-notification"), {})
    assert unauthenticated.status_code == 401
    assert "Basic" in unauthenticated.headers["WWW-Authenticate"]
    wrong = await post(gateway, body("sns-notification"), basic("jdu_not-a-token"))
    assert wrong.status_code == 401
    bearer = await post(gateway, body("sns-notification"),
                        {"Authorization": f"Bearer {gateway.token}"})
    assert (bearer.status_code, bearer.json()["status"]) == (202, "received")
    assert bearer.json()["topic"].endswith(".hmpps-domain-events.hmpps")


async def test_a_broken_delivery_is_refused_naming_the_field(gateway: Gateway) -> None:
    answer = await post(gateway, body("sns-notification", Message=None), basic(gateway.token))
    assert answer.status_code == 422
    assert answer.json()["problems"][0]["field"] == "Message"
    unsubscribed = await post(gateway, body("sns-subscription-confirmation",
                                            Type="UnsubscribeConfirmation"),
                              basic(gateway.token))
    assert (unsubscribed.status_code, unsubscribed.json()["status"]) == (200, "ignored")
