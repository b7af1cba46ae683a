"""The SNS endpoint's edges on a real gateway: a subscription confirmation fetched from a
local stand-in for SNS (only for an SNS URL), the credential as SNS sends it (basic auth,
after a challenge) or as a bearer token, broken deliveries refused naming the field, and
SNS signatures verified with the certificate the stand-in serves before anything is
published or fetched."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer

from services.common.kafka import stop_consumer
from services.common.settings import Settings
from services.ingest.credentials import create_agency
from services.ingest.entrypoints.hmpps import sns_transport
from services.ingest.entrypoints.http import create_app
from services.ingest.formats.hmpps.intake import hmpps_topic
from services.stack.ports import free_port
from tests.servers import serving
from tests.sns_signing import CERT_URL, Signer, default_signer, make_signer, sign

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[2] / "fixtures" / "hmpps"


@dataclass
class StandIn:
    """A local HTTP server standing in for sns.<region>.amazonaws.com: it answers a
    SubscribeURL with ``status`` and serves the test signing certificate (any .pem path)
    with ``cert_status``."""
    url: str
    status: int = 200
    cert_status: int = 200
    seen: list[str] = field(default_factory=list)

    @property
    def confirmations(self) -> list[str]:
        return [path for path in self.seen if path.startswith("/?Action=ConfirmSubscription")]

    @property
    def certificates(self) -> list[str]:
        return [path for path in self.seen if path.endswith(".pem")]


@pytest.fixture
def sns_stand_in() -> Iterator[StandIn]:
    stand_in = StandIn("")
    pem = default_signer().pem

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            stand_in.seen.append(self.path)
            certificate = self.path.endswith(".pem")
            content = pem if certificate and stand_in.cert_status == 200 else b""
            self.send_response(stand_in.cert_status if certificate else stand_in.status)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

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
    """Sends whatever the gateway fetches (a SubscribeURL, a SigningCertURL, wherever it
    points) to the stand-in (same path and query, plain HTTP), so nothing goes unseen."""

    def __init__(self, stand_in: StandIn) -> None:
        self._stand_in = stand_in
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        base = httpx.URL(self._stand_in.url)  # read each time: a test may take it away
        request.url = request.url.copy_with(scheme="http", host=base.host, port=base.port)
        return await self._inner.handle_async_request(request)


@dataclass
class Gateway:
    url: str
    token: str
    settings: Settings


@asynccontextmanager
async def running_gateway(settings: Settings, stand_in: StandIn) -> AsyncIterator[Gateway]:
    settings = settings.model_copy(update={"hmpps_intake": False})
    token = await create_agency(settings, "hmpps", "HMPPS", "PROBATION")
    app = create_app(settings, migrate=False)
    app.dependency_overrides[sns_transport] = lambda: ToStandIn(stand_in)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                                           log_config=None))
    with serving(server, "gateway", port) as url:
        yield Gateway(url, token, settings)


@pytest.fixture
async def gateway(migrated: Settings, sns_stand_in: StandIn) -> AsyncIterator[Gateway]:
    async with running_gateway(migrated, sns_stand_in) as running:
        yield running


def envelope(name: str, **changes: Any) -> dict[str, Any]:
    return {**json.loads((FIXTURES / f"{name}.json").read_text()), **changes}


def body(name: str, signer: Signer | None = None, **changes: Any) -> str:
    """The fixture with ``changes``, signed as SNS signs it (with the test key)."""
    return json.dumps(sign(envelope(name, **changes), signer))


def tampered(name: str, **changes: Any) -> str:
    """The fixture signed by SNS, then ``changes`` made on the way."""
    return json.dumps({**sign(envelope(name)), **changes})


async def published(gateway: Gateway, idle_ms: int = 1500) -> list[bytes]:
    """Every domain event on the agency's HMPPS topic."""
    consumer = AIOKafkaConsumer(
        hmpps_topic(gateway.settings, "hmpps"), bootstrap_servers=gateway.settings.kafka_bootstrap,
        group_id=None, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found: list[bytes] = []
    try:
        while batch := await consumer.getmany(timeout_ms=idle_ms):
            found.extend(r.value for records in batch.values() for r in records if r.value)
        return found
    finally:
        await stop_consumer(consumer)


async def metrics(gateway: Gateway) -> str:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        return (await client.get("/metrics")).text


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
    assert len(sns_stand_in.confirmations) == 1
    assert sns_stand_in.confirmations[0].startswith("/?Action=ConfirmSubscription&TopicArn=")
    # the certificate was fetched first, from the URL the delivery named
    assert sns_stand_in.seen[0] == httpx.URL(CERT_URL).path


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
    answer = await post(gateway, forged, basic(gateway.token))  # signed: the URL is refused
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


# --- SNS signatures

async def test_a_signed_notification_is_verified_and_reaches_the_topic(
        gateway: Gateway, sns_stand_in: StandIn) -> None:
    for version in ("1", "2"):
        signed = sign(envelope("sns-notification", MessageId=f"m-{version}"), version=version)
        answer = await post(gateway, json.dumps(signed), basic(gateway.token))
        assert (answer.status_code, answer.json()["status"]) == (202, "received"), answer.text
    assert await published(gateway) == [envelope("sns-notification")["Message"].encode()] * 2
    assert len(sns_stand_in.certificates) == 1  # kept by URL: fetched once for both


@pytest.mark.parametrize("changes", [
    {"Message": json.dumps({"eventType": "prisoner-offender-search.prisoner.released"})},
    {"TopicArn": "arn:aws:sns:eu-west-2:000000000000:another-topic"},
    {"Timestamp": "2026-11-21T10:02:12.140Z"},
    {"Subject": "added on the way"}], ids=["Message", "TopicArn", "Timestamp", "Subject"])
async def test_a_tampered_notification_is_refused_and_nothing_is_published(
        gateway: Gateway, changes: dict[str, str]) -> None:
    answer = await post(gateway, tampered("sns-notification", **changes), basic(gateway.token))
    assert answer.status_code == 403, answer.text
    refusal = answer.json()
    assert refusal["type"] == "/problems/forbidden"
    assert refusal["problems"] == [{"field": "Signature", "code": "signature_mismatch",
                                    "reason": "does not verify with the signing certificate "
                                              "over the signed fields"}]
    assert "A7341DX" not in answer.text
    # a delivery SNS did sign goes through after it: the only event on the topic
    assert (await post(gateway, body("sns-notification"), basic(gateway.token))
            ).status_code == 202
    assert len(await published(gateway)) == 1
    assert ('joinedup_hmpps_sns_unverified_total{reason="signature_mismatch"} 1.0'
            in await metrics(gateway))


async def test_an_unsigned_notification_is_refused_naming_the_field(gateway: Gateway) -> None:
    unsigned = envelope("sns-notification")
    for name in ("Signature", "SignatureVersion", "SigningCertURL"):
        del unsigned[name]
    answer = await post(gateway, json.dumps(unsigned), basic(gateway.token))
    assert answer.status_code == 403
    assert answer.json()["problems"][0]["field"] == "SignatureVersion"
    # the fixture's made-up signature, checked with the certificate the stand-in serves
    made_up = await post(gateway, json.dumps(envelope("sns-notification")),
                         basic(gateway.token))
    assert made_up.status_code == 403
    assert made_up.json()["problems"][0]["code"] == "signature_mismatch"
    assert await published(gateway, idle_ms=500) == []


async def test_a_confirmation_that_does_not_verify_is_refused_and_never_confirmed(
        gateway: Gateway, sns_stand_in: StandIn) -> None:
    forged = tampered("sns-subscription-confirmation",
                      SubscribeURL="https://sns.eu-west-2.amazonaws.com/?Action="
                                   "ConfirmSubscription&TopicArn=arn:aws:sns:eu-west-2:1:other")
    answer = await post(gateway, forged, basic(gateway.token))
    assert answer.status_code == 403
    assert answer.json()["problems"][0]["code"] == "signature_mismatch"
    assert sns_stand_in.confirmations == []
    other_key = body("sns-subscription-confirmation", make_signer())
    assert (await post(gateway, other_key, basic(gateway.token))).status_code == 403
    assert sns_stand_in.confirmations == []


@pytest.mark.parametrize("url", [
    "https://attacker.example/SimpleNotificationService-1.pem",
    "http://sns.eu-west-2.amazonaws.com/SimpleNotificationService-1.pem",
    "https://sns.eu-west-2.amazonaws.com/SimpleNotificationService-1.txt"])
async def test_a_certificate_url_elsewhere_is_refused_and_never_fetched(
        gateway: Gateway, sns_stand_in: StandIn, url: str) -> None:
    signer = make_signer(url=url)  # a key of the sender's own, a certificate of its own
    for name in ("sns-notification", "sns-subscription-confirmation"):
        answer = await post(gateway, body(name, signer), basic(gateway.token))
        assert answer.status_code == 403
        assert answer.json()["problems"][0] == {
            "field": "SigningCertURL", "code": "certificate_url",
            "reason": "must be an https://sns.<region>.amazonaws.com/ URL of a .pem file"}
    assert sns_stand_in.seen == []  # neither the certificate nor the SubscribeURL
    assert await published(gateway, idle_ms=500) == []


async def test_a_certificate_that_cannot_be_fetched_is_answered_5xx_so_sns_retries(
        gateway: Gateway, sns_stand_in: StandIn) -> None:
    sns_stand_in.cert_status = 404
    for name in ("sns-notification", "sns-subscription-confirmation"):
        answer = await post(gateway, body(name), basic(gateway.token))
        assert answer.status_code == 502, answer.text
        assert answer.json()["problems"][0]["code"] == "certificate_unavailable"
    assert sns_stand_in.confirmations == []
    reachable, sns_stand_in.url = sns_stand_in.url, f"http://127.0.0.1:{free_port()}"
    unreachable = await post(gateway, body("sns-notification"), basic(gateway.token))
    assert unreachable.status_code == 502
    assert await published(gateway, idle_ms=500) == []
    # once SNS serves it again, SNS's retry goes through
    sns_stand_in.url, sns_stand_in.cert_status = reachable, 200
    assert (await post(gateway, body("sns-notification"), basic(gateway.token))
            ).status_code == 202
    assert ('joinedup_hmpps_sns_unverified_total{reason="certificate_unavailable"} 3.0'
            in await metrics(gateway))


async def test_with_verification_off_an_unsigned_delivery_is_taken(
        migrated: Settings, sns_stand_in: StandIn) -> None:
    # Only for a path that verified the signature already (docs/formats-hmpps.md).
    unverified = migrated.model_copy(update={"hmpps_verify_signatures": False})
    async with running_gateway(unverified, sns_stand_in) as gateway:
        unsigned = envelope("sns-notification")
        for name in ("Signature", "SignatureVersion", "SigningCertURL"):
            del unsigned[name]
        answer = await post(gateway, json.dumps(unsigned), basic(gateway.token))
        assert answer.status_code == 202
        assert sns_stand_in.seen == []
