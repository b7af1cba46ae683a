"""POST /v1/hmpps/sns: HMPPS domain events as an AWS SNS HTTPS subscription delivers them.

The endpoint only takes the delivery: a ``Notification``'s domain event is written, as it was
published, to ``<prefix>.hmpps-domain-events.<agency>`` (acks=all) and answered 202; the
intake (``services/ingest/formats/hmpps/intake.py``, started with this router) maps it. A
``SubscriptionConfirmation`` is confirmed by fetching its ``SubscribeURL``, only if that is an
``https://sns.<region>.amazonaws.com/`` URL (the fetch is the ``subscription_confirmer``
dependency, replaceable). The agency is the gateway credential's: SNS sends it as HTTP basic
auth (``https://hmpps:<token>@gateway/v1/hmpps/sns``), a bridge may send it as a bearer token.
Every delivery's SNS signature is verified before anything is published or fetched
(``sns_signature``; the signing certificate from SNS's own host only, cached by the app):
one that does not verify is refused 403, a certificate that cannot be fetched answers 502
so SNS sends the delivery again. ``hmpps_verify_signatures`` turns this off, only for a
path that verified the signature already (docs/formats-hmpps.md).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import httpx
import structlog
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.common.kafka import BROKER_UNAVAILABLE, TopicGuard, TopicMissing, ensure_topics
from services.common.message_keys import SubjectKeys
from services.common.settings import Settings
from services.common.validation import Problem
from services.ingest.adapters.publisher import gateway_producer
from services.ingest.auth import Principal
from services.ingest.entrypoints import schemas as s
from services.ingest.entrypoints.body import RequestRefused, read_json
from services.ingest.formats.hmpps import sns, sns_signature
from services.ingest.formats.hmpps.intake import HmppsIntake, hmpps_topic
from services.ingest.formats.hmpps.mapper import person_of
from services.ingest.formats.hmpps.mapping import load_mapping
from services.ingest.formats.hmpps.metrics import HmppsMetrics
from services.ingest.formats.hmpps.sns_certificates import (
    CertificateUnavailable,
    SigningCertificates,
)

log = structlog.get_logger("joinedup.ingest.hmpps")
Confirm = Callable[[str], Awaitable[None]]
_CHALLENGE: Final = {"WWW-Authenticate": 'Basic realm="joinedup", Bearer realm="joinedup"'}


class SnsAnswer(BaseModel):
    status: Literal["received", "confirmed", "ignored"] = Field(
        description="received: the domain event is on the HMPPS topic (acks=all) and will be "
                    "mapped (or parked with the reason); confirmed: the subscription was "
                    "confirmed; ignored: an unsubscribe confirmation, nothing to do")
    topic: str | None = Field(default=None, description="where the domain event was written")
    partition: int | None = None
    offset: int | None = None


_NOTIFICATION_EXAMPLE: Final = {
    "Type": "Notification", "MessageId": "2b6e2f70-6a3d-5c2f-9a1e-0c6f1f8b2a11",
    "TopicArn": "arn:aws:sns:eu-west-2:000000000000:hmpps-domain-events",
    "Message": '{"eventType":"prisoner-offender-search.prisoner.released","version":1,'
               '"occurredAt":"2026-11-20T10:02:11Z","publishedAt":"2026-11-20T10:02:12Z",'
               '"personReference":{"identifiers":[{"type":"NOMS","value":"A1234BC"}]},'
               '"additionalInformation":{"nomsNumber":"A1234BC","reason":"RELEASED",'
               '"prisonId":"LEI"}}',
    "MessageAttributes": {"eventType": {
        "Type": "String", "Value": "prisoner-offender-search.prisoner.released"}},
    "Timestamp": "2026-11-20T10:02:12.140Z", "SignatureVersion": "2",
    "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2eg"
                 "U3LJz0EEXAMPLE==",
    "SigningCertURL": "https://sns.eu-west-2.amazonaws.com/SimpleNotificationService-"
                      "01d088a6f77103d0fe307c0069e40ed6.pem"}
_CONFIRMATION_EXAMPLE: Final = {
    "Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
    "TopicArn": "arn:aws:sns:eu-west-2:000000000000:hmpps-domain-events",
    "SubscribeURL": "https://sns.eu-west-2.amazonaws.com/?Action=ConfirmSubscription"
                    "&TopicArn=arn:aws:sns:eu-west-2:000000000000:hmpps-domain-events"
                    "&Token=2336412f37fb",
    "Token": "2336412f37fb",
    "Message": "You have chosen to subscribe to the topic arn:aws:sns:eu-west-2:000000000000:"
               "hmpps-domain-events.\nTo confirm the subscription, visit the SubscribeURL "
               "included in this message.",
    "Timestamp": "2026-11-01T09:00:00.000Z", "SignatureVersion": "2",
    "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2eg"
                 "U3LJz0EEXAMPLE==",
    "SigningCertURL": "https://sns.eu-west-2.amazonaws.com/SimpleNotificationService-"
                      "01d088a6f77103d0fe307c0069e40ed6.pem"}


_TOPIC_ARN: Final = {"type": "string", "pattern": "^arn:aws"}
#: What SNS signs with: verified unless hmpps_verify_signatures is off.
_SIGNATURE: Final = {
    "SignatureVersion": {"enum": ["1", "2"], "description": "1: SHA1withRSA, 2: SHA256withRSA"},
    "Signature": {"type": "string", "description": "base64; verified over the signed fields "
                  "with the certificate at SigningCertURL"},
    "SigningCertURL": {"type": "string", "description": "fetched (and cached) only if it is "
                       "a .pem on https://sns.<region>.amazonaws.com/",
                       "pattern": r"^https://sns\.[a-z]{2}(-[a-z]+)+-[0-9]\.amazonaws\.com/"
                                  r"[^?#]*\.pem$"},
    "Timestamp": {"type": "string"}, "MessageId": {"type": "string"}}
_SIGNED: Final = ["MessageId", "Timestamp", "SignatureVersion", "Signature", "SigningCertURL"]
#: The SNS HTTP(S) message, as SNS posts it (as text/plain; JSON accepted too).
_ENVELOPE_SCHEMA: Final = {"oneOf": [
    {"title": "Notification", "type": "object",
     "required": ["Type", "Message", "TopicArn", *_SIGNED], "properties": {
         "Type": {"const": "Notification"},
         "Message": {"type": "string", "description": "the HMPPS domain event JSON"},
         "Subject": {"type": "string"}, "TopicArn": _TOPIC_ARN,
         "MessageAttributes": {"type": "object"}, **_SIGNATURE}},
    {"title": "SubscriptionConfirmation", "type": "object",
     "required": ["Type", "Message", "TopicArn", "SubscribeURL", "Token", *_SIGNED],
     "properties": {
         "Type": {"const": "SubscriptionConfirmation"}, "TopicArn": _TOPIC_ARN,
         "Message": {"type": "string"}, "Token": {"type": "string"}, **_SIGNATURE,
         "SubscribeURL": {"type": "string", "description": "fetched only if it is an "
                          "https://sns.<region>.amazonaws.com/ URL",
                          "pattern": r"^https://sns\.[a-z]{2}(-[a-z]+)+-[0-9]\.amazonaws\.com/"
                                     r"\?Action=ConfirmSubscription"}}},
    {"title": "UnsubscribeConfirmation", "type": "object",
     "required": ["Type", "Message", "TopicArn", "SubscribeURL", "Token", *_SIGNED],
     "properties": {"Type": {"const": "UnsubscribeConfirmation"}, "TopicArn": _TOPIC_ARN,
                    "Message": {"type": "string"}, "Token": {"type": "string"},
                    "SubscribeURL": {"type": "string"}, **_SIGNATURE}}]}


@dataclass
class HmppsEdge:
    """What the endpoint needs for the lifetime of the app."""
    producer: AIOKafkaProducer
    keys: SubjectKeys
    metrics: HmppsMetrics
    guard: TopicGuard
    certificates: SigningCertificates = field(default_factory=SigningCertificates)


def sns_transport() -> httpx.AsyncBaseTransport | None:
    """How the gateway reaches SNS (the SubscribeURL, the SigningCertURL): None, the network.
    Replaceable (``dependency_overrides``): tests send SNS's URLs to a local stand-in."""
    return None


def confirmer(transport: httpx.AsyncBaseTransport | None = None) -> Confirm:
    """Confirms an SNS subscription: GET its SubscribeURL (already checked to be SNS's),
    never following a redirect; over ``transport`` if given (tests: a local server)."""
    async def confirm(url: str) -> None:
        async with httpx.AsyncClient(transport=transport, timeout=10.0,
                                     follow_redirects=False) as client:
            (await client.get(url)).raise_for_status()
    return confirm


def subscription_confirmer(
        transport: httpx.AsyncBaseTransport | None = Depends(sns_transport)) -> Confirm:
    """The dependency that confirms subscriptions (replaceable: ``dependency_overrides``)."""
    return confirmer(transport)


async def hmpps_principal(request: Request) -> Principal:
    """The agency of the gateway credential, as basic auth (SNS) or a bearer token."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    token: str | None = credential.strip() or None
    if scheme.lower() == "basic" and token:
        try:
            token = base64.b64decode(token, validate=True).decode().partition(":")[2] or None
        except (binascii.Error, UnicodeDecodeError):
            token = None
    elif scheme.lower() != "bearer":
        token = None
    found = await request.app.state.gateway.credentials.principal(token)
    if found is None:
        raise RequestRefused(401, "Unauthenticated", [Problem(
            "authorization", "the agency's gateway token is required, as the password of "
            "basic auth or as a bearer token", "unauthenticated")], _CHALLENGE)
    request.state.agency = found.agency_id
    return found


def hmpps_router(settings: Settings) -> APIRouter:
    mapping = load_mapping(settings.hmpps_mapping)  # checked now: a bad file stops the start

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = gateway_producer(settings)
        await producer.start()
        metrics = HmppsMetrics(app.state.metrics.registry)
        app.state.hmpps = HmppsEdge(producer, settings.subject_keys(), metrics,
                                    TopicGuard(producer))
        stopping = asyncio.Event()
        intake = HmppsIntake(settings, app.state.gateway, producer, mapping, metrics)
        task = asyncio.create_task(intake.run(stopping)) if settings.hmpps_intake else None
        try:
            yield
        finally:
            stopping.set()
            if task is not None:
                with suppress(TimeoutError):
                    await asyncio.wait_for(task, 30)
            await producer.stop()

    router = APIRouter(prefix="/v1/hmpps", tags=["hmpps"], lifespan=lifespan)

    @router.post("/sns", operation_id="receiveHmppsSnsDelivery", response_model=SnsAnswer,
                 status_code=202, responses={
                     200: {"description": "subscription confirmed, or an unsubscribe "
                                          "confirmation ignored", "model": SnsAnswer,
                           "content": {"application/json": {"example": {
                               "status": "confirmed"}}}},
                     202: {"description": "the domain event is on the HMPPS topic (acks=all)",
                           "content": {"application/json": {"example": {
                               "status": "received", "topic": "joinedup.hmpps-domain-events."
                               "hmpps", "partition": 2, "offset": 1041}}}},
                     401: s.UNAUTHENTICATED,
                     403: s.problem("the SNS signature did not verify, or its certificate "
                                    "URL is not SNS's (the field is named); nothing was "
                                    "published or fetched"),
                     422: s.problem("not an SNS delivery joinedup takes (the field is named)"),
                     502: s.problem("the subscription could not be confirmed with SNS, or "
                                    "SNS's signing certificate could not be fetched: SNS "
                                    "sends the delivery again"),
                     503: s.problem("the broker did not acknowledge: SNS retries",
                                    s.UNAVAILABLE)},
                 openapi_extra={"requestBody": {"required": True, "content": {
                     media: {"schema": _ENVELOPE_SCHEMA, "examples": {
                         "notification": {"value": _NOTIFICATION_EXAMPLE},
                         "confirmation": {"value": _CONFIRMATION_EXAMPLE}}}
                     for media in ("text/plain", "application/json")}}})
    async def receive(request: Request, who: Principal = Depends(hmpps_principal),
                      confirm: Confirm = Depends(subscription_confirmer),
                      transport: httpx.AsyncBaseTransport | None = Depends(sns_transport)
                      ) -> JSONResponse:
        """Take one SNS delivery (SNS posts JSON as text/plain). A notification's domain
        event is written as published and mapped afterwards; anything it cannot be mapped
        to is parked on the dead-letter topic with the reason, never dropped."""
        edge: HmppsEdge = request.app.state.hmpps
        body = await read_json(request, settings.api_max_body_bytes)
        try:
            envelope = sns.read_envelope(body, request.headers.get("x-amz-sns-message-type"))
        except sns.EnvelopeError as exc:
            edge.metrics.deliveries.labels("unknown", "refused").inc()
            field_name, _, reason = str(exc).partition(": ")
            raise RequestRefused(422, "Not an SNS delivery", [Problem(
                field_name, reason, "invalid_envelope")]) from None
        if settings.hmpps_verify_signatures:  # before anything is published or fetched
            await _verified(body, _KINDS[type(envelope)], who, transport, edge)
        if isinstance(envelope, sns.Confirmation):
            return await _confirmed(envelope, who, confirm, edge)
        if isinstance(envelope, sns.Unsubscribed):
            edge.metrics.deliveries.labels("unsubscribe", "ignored").inc()
            log.info("sns unsubscribe confirmation ignored", agency=who.agency_id)
            return JSONResponse(SnsAnswer(status="ignored").model_dump(), status_code=200)
        return await _written(envelope, who, settings, edge)

    return router


_KINDS: Final[dict[type, str]] = {sns.Notification: "notification",
                                  sns.Confirmation: "subscription",
                                  sns.Unsubscribed: "unsubscribe"}


async def _verified(body: dict[str, Any], kind: str, who: Principal,
                    transport: httpx.AsyncBaseTransport | None, edge: HmppsEdge) -> None:
    """Refuses (403) a delivery SNS did not sign; 502 if its certificate cannot be had now.
    Logs and counts reason codes only: the fields' values may be personal data."""
    try:
        signed = sns_signature.read_signed(body)  # the URL is checked here, before any fetch
        certificate = await edge.certificates.certificate(signed.certificate_url, transport)
        sns_signature.verify(signed, certificate, datetime.now(UTC))
    except sns_signature.SignatureRefused as refused:
        edge.metrics.deliveries.labels(kind, "refused").inc()
        edge.metrics.unverified.labels(refused.code).inc()
        log.warning("sns signature not verified", agency=who.agency_id, reason=refused.code)
        raise RequestRefused(403, "SNS signature not verified", [Problem(
            refused.field_name, refused.reason, refused.code)]) from None
    except CertificateUnavailable as exc:
        edge.metrics.deliveries.labels(kind, "failed").inc()
        edge.metrics.unverified.labels("certificate_unavailable").inc()
        log.warning("sns signing certificate not fetched", agency=who.agency_id,
                    error=exc.reason)
        raise RequestRefused(502, "Signing certificate not fetched", [Problem(
            "SigningCertURL", f"SNS's signing certificate could not be had ({exc.reason}); "
            "SNS will send the delivery again", "certificate_unavailable")]) from None


async def _confirmed(envelope: sns.Confirmation, who: Principal, confirm: Confirm,
                     edge: HmppsEdge) -> JSONResponse:
    try:
        await confirm(envelope.subscribe_url)
    except (httpx.HTTPError, OSError) as exc:
        edge.metrics.deliveries.labels("subscription", "failed").inc()
        log.warning("sns subscription not confirmed", agency=who.agency_id,
                    error=type(exc).__name__)
        raise RequestRefused(502, "Subscription not confirmed", [Problem(
            "SubscribeURL", f"SNS did not confirm ({type(exc).__name__}); it will send the "
            "confirmation again", "confirmation_failed")]) from None
    edge.metrics.deliveries.labels("subscription", "confirmed").inc()
    log.info("sns subscription confirmed", agency=who.agency_id, topic_arn=envelope.topic_arn)
    return JSONResponse(SnsAnswer(status="confirmed").model_dump(), status_code=200)


async def _written(envelope: sns.Notification, who: Principal, settings: Settings,
                   edge: HmppsEdge) -> JSONResponse:
    topic = hmpps_topic(settings, who.agency_id)
    person = person_of(envelope.message)
    try:
        try:  # never write to a topic the broker does not list (TopicGuard says why)
            await edge.guard.require([topic])
        except TopicMissing:  # the agency's first delivery, or a broker that lost it
            await ensure_topics(settings, topics=(topic,))
            await edge.guard.require([topic])
        sent = await asyncio.wait_for(await edge.producer.send(
            topic, envelope.message, key=edge.keys.key(person) if person else None,
            headers=_headers(envelope)), settings.api_produce_timeout_seconds + 1.0)
    except BROKER_UNAVAILABLE as exc:
        edge.metrics.deliveries.labels("notification", "not_written").inc()
        raise RequestRefused(503, "Service unavailable", [Problem(
            "body", f"the event log did not acknowledge ({type(exc).__name__}); SNS retries",
            "unavailable")], {"Retry-After": "5"}) from None
    edge.metrics.deliveries.labels("notification", "received").inc()
    answer = SnsAnswer(status="received", topic=sent.topic, partition=sent.partition,
                       offset=sent.offset)
    return JSONResponse(answer.model_dump(), status_code=202)


def _headers(envelope: sns.Notification) -> list[tuple[str, bytes]]:
    headers = [("content-type", b"application/json")]
    if envelope.message_id:
        headers.append(("sns-message-id", envelope.message_id.encode()))
    return headers


