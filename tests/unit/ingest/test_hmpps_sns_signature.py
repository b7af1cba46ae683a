"""SNS message signatures: the string SNS signs for each Type, versions 1 and 2, every signed
field and the signature itself covered, certificate URLs and validity, and the certificate
fetch (cached by URL, refused when it is not a certificate)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.formats.hmpps import sns
from services.ingest.formats.hmpps.sns_certificates import (
    CertificateUnavailable,
    SigningCertificates,
)
from services.ingest.formats.hmpps.sns_signature import (
    SignatureRefused,
    read_signed,
    string_to_sign,
    verify,
)
from tests.sns_signing import (
    CERT_URL,
    CONFIRMATION_FIELDS,
    NOTIFICATION_FIELDS,
    Signer,
    certificate_transport,
    default_signer,
    make_signer,
    sign,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "hmpps"
NOW = datetime.now(UTC)


def envelope(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


def make_signer_at(url: str) -> Signer:
    """The test key and certificate, said to be at ``url``."""
    return replace(default_signer(), url=url)


def unsubscribe() -> dict[str, Any]:
    return {**envelope("sns-subscription-confirmation"), "Type": "UnsubscribeConfirmation"}


def checked(body: dict[str, Any], when: datetime = NOW) -> None:
    verify(read_signed(body), default_signer().certificate, when)


def refusal(body: dict[str, Any], when: datetime = NOW) -> SignatureRefused:
    with pytest.raises(SignatureRefused) as refused:
        checked(body, when)
    return refused.value


# --- the string to sign, as AWS documents it

def test_a_notification_signs_its_six_fields_in_order_subject_only_when_present() -> None:
    body = {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:t",
            "Message": "{}", "Timestamp": "2026-11-20T10:02:12.140Z",
            "MessageAttributes": {"eventType": {"Type": "String", "Value": "x"}},
            "UnsubscribeURL": "https://sns.eu-west-2.amazonaws.com/?Action=Unsubscribe"}
    assert string_to_sign(body) == (b"Message\n{}\nMessageId\nm-1\n"
                                    b"Timestamp\n2026-11-20T10:02:12.140Z\n"
                                    b"TopicArn\narn:aws:sns:t\nType\nNotification\n")
    assert string_to_sign({**body, "Subject": "s"}) == (
        b"Message\n{}\nMessageId\nm-1\nSubject\ns\n"
        b"Timestamp\n2026-11-20T10:02:12.140Z\nTopicArn\narn:aws:sns:t\nType\nNotification\n")


@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_a_confirmation_signs_its_seven_fields_in_order(kind: str) -> None:
    body = {"Type": kind, "MessageId": "m-2", "Token": "tok", "TopicArn": "arn:aws:sns:t",
            "Message": "You have chosen", "SubscribeURL": "https://sns.eu-west-2.amazonaws"
            ".com/?Action=ConfirmSubscription", "Timestamp": "2026-11-01T09:00:00.000Z",
            "Subject": "not signed for a confirmation"}
    assert string_to_sign(body) == (
        b"Message\nYou have chosen\nMessageId\nm-2\n"
        b"SubscribeURL\nhttps://sns.eu-west-2.amazonaws.com/?Action=ConfirmSubscription\n"
        b"Timestamp\n2026-11-01T09:00:00.000Z\nToken\ntok\nTopicArn\narn:aws:sns:t\n"
        + f"Type\n{kind}\n".encode())


@pytest.mark.parametrize(("name", "missing"), [
    ("sns-notification", "Timestamp"), ("sns-notification", "MessageId"),
    ("sns-subscription-confirmation", "Token"), ("sns-subscription-confirmation", "Message")])
def test_a_signed_field_missing_is_refused_by_name(name: str, missing: str) -> None:
    body = sign(envelope(name))
    del body[missing]
    refused = refusal(body)
    assert (refused.field_name, refused.code) == (missing, "missing_field")


# --- versions 1 and 2, every field covered

DELIVERIES = {"Notification": lambda: envelope("sns-notification"),
              "SubscriptionConfirmation": lambda: envelope("sns-subscription-confirmation"),
              "UnsubscribeConfirmation": unsubscribe}


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("kind", list(DELIVERIES))
def test_a_delivery_signed_by_sns_verifies(kind: str, version: str) -> None:
    checked(sign(DELIVERIES[kind](), version=version))


@pytest.mark.parametrize(("kind", "name"), [
    *(("Notification", f) for f in NOTIFICATION_FIELDS if f not in ("Subject", "Type")),
    *(("SubscriptionConfirmation", f) for f in CONFIRMATION_FIELDS if f != "Type"),
    *(("UnsubscribeConfirmation", f) for f in CONFIRMATION_FIELDS if f != "Type")])
@pytest.mark.parametrize("version", ["1", "2"])
def test_changing_any_signed_field_fails(kind: str, name: str, version: str) -> None:
    body = sign(DELIVERIES[kind](), version=version)
    body[name] += "x"
    refused = refusal(body)
    assert (refused.field_name, refused.code) == ("Signature", "signature_mismatch")
    assert body[name] not in str(refused)  # the reason, never the value


def test_changing_the_type_changes_the_fields_signed_and_fails() -> None:
    for kind, other in [("SubscriptionConfirmation", "UnsubscribeConfirmation"),
                        ("UnsubscribeConfirmation", "SubscriptionConfirmation")]:
        body = sign(DELIVERIES[kind]())
        assert refusal({**body, "Type": other}).code == "signature_mismatch"


def test_fields_sns_does_not_sign_may_differ() -> None:
    body = sign(envelope("sns-notification"))
    checked({**body, "MessageAttributes": {}, "UnsubscribeURL": "https://elsewhere/"})


def test_the_subject_is_signed_when_present_and_cannot_be_added_or_removed() -> None:
    plain = envelope("sns-notification")
    assert "Subject" not in plain
    with_subject = sign({**plain, "Subject": "prisoner released"})
    checked(with_subject)
    assert refusal({**with_subject, "Subject": "prisoner received"}).code == "signature_mismatch"
    without = {k: v for k, v in with_subject.items() if k != "Subject"}
    assert refusal(without).code == "signature_mismatch"
    added = {**sign(plain), "Subject": "added later"}
    assert refusal(added).code == "signature_mismatch"


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_changed_signature_fails(version: str) -> None:
    body = sign(envelope("sns-notification"), version=version)
    raw = bytearray(base64.b64decode(body["Signature"]))
    raw[len(raw) // 2] ^= 0x01
    body["Signature"] = base64.b64encode(raw).decode()
    assert refusal(body).code == "signature_mismatch"


def test_a_signature_by_another_key_fails() -> None:
    body = sign(envelope("sns-notification"), make_signer())
    assert refusal(body).code == "signature_mismatch"


def test_a_version_1_signature_does_not_pass_as_version_2() -> None:
    body = sign(envelope("sns-notification"), version="1")
    assert refusal({**body, "SignatureVersion": "2"}).code == "signature_mismatch"


@pytest.mark.parametrize(("changes", "field_name", "code"), [
    ({"Signature": None}, "Signature", "missing_signature"),
    ({"Signature": ""}, "Signature", "missing_signature"),
    ({"Signature": "not base64!"}, "Signature", "bad_signature_encoding"),
    ({"Signature": "QUJD" * 1000}, "Signature", "bad_signature_encoding"),
    ({"SignatureVersion": "3"}, "SignatureVersion", "unknown_version"),
    ({"SignatureVersion": 2}, "SignatureVersion", "unknown_version"),
    ({"SignatureVersion": None}, "SignatureVersion", "unknown_version"),
    ({"SigningCertURL": None}, "SigningCertURL", "certificate_url"),
])
def test_what_cannot_be_a_signature_is_refused_naming_the_field(
        changes: dict[str, Any], field_name: str, code: str) -> None:
    body = {k: v for k, v in {**sign(envelope("sns-notification")), **changes}.items()
            if v is not None}
    refused = refusal(body)
    assert (refused.field_name, refused.code) == (field_name, code)


@given(message=st.text(max_size=300), subject=st.none() | st.text(max_size=40),
       version=st.sampled_from(["1", "2"]))
@settings(max_examples=40, deadline=None)
def test_any_text_signed_verifies_and_any_change_to_it_fails(
        message: str, subject: str | None, version: str) -> None:
    body = {**envelope("sns-notification"), "Message": message}
    if subject is not None:
        body["Subject"] = subject
    signed = sign(body, version=version)
    checked(signed)
    assert refusal({**signed, "Message": message + "\n"}).code == "signature_mismatch"


# --- the certificate: its URL and its validity

@pytest.mark.parametrize("url", [
    "http://sns.eu-west-2.amazonaws.com/SimpleNotificationService-1.pem",       # not TLS
    "https://sns.eu-west-2.amazonaws.com/SimpleNotificationService-1.crt",      # not .pem
    "https://sns.eu-west-2.amazonaws.com/",
    "https://evil.example/SimpleNotificationService-1.pem",                     # not SNS
    "https://sns.eu-west-2.amazonaws.com.evil.example/cert.pem",
    "https://sns.eu-west-2.amazonaws.com@evil.example/cert.pem",                # userinfo
    "https://user:pw@sns.eu-west-2.amazonaws.com/cert.pem",
    "https://sns.eu-west-2.amazonaws.com:8443/cert.pem",                        # port
    "https://sns.eu-west-2.amazonaws.com/cert.pem?x=.pem",                      # query
    "https://sns.eu-west-2.amazonaws.com/x.pem#y.pem",
    "https://sns.eu-west-2.amazonaws.com/../cert.pem",
    "https://s3.amazonaws.com/sns.eu-west-2.amazonaws.com/cert.pem",
    "https://sns.eu-west-2.amazonaws.com:x/cert.pem",                           # bad port
    "sns.eu-west-2.amazonaws.com/cert.pem",
])
def test_a_certificate_url_not_snss_is_refused(url: str) -> None:
    assert not sns.is_sns_certificate_url(url)
    refused = refusal(sign(envelope("sns-notification"), make_signer_at(url)))
    assert (refused.field_name, refused.code) == ("SigningCertURL", "certificate_url")


@pytest.mark.parametrize("url", [
    CERT_URL,
    "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
    "https://sns.eu-west-2.amazonaws.com:443/SimpleNotificationService-abc.pem"])
def test_snss_certificate_urls_are_taken(url: str) -> None:
    assert sns.is_sns_certificate_url(url)


def test_a_certificate_outside_its_validity_period_is_refused() -> None:
    certificate = default_signer().certificate
    body = sign(envelope("sns-notification"))
    for when in (certificate.not_valid_before_utc - timedelta(seconds=1),
                 certificate.not_valid_after_utc + timedelta(seconds=1)):
        refused = refusal(body, when)
        assert (refused.field_name, refused.code) == ("SigningCertURL", "certificate_expired")
    checked(body, certificate.not_valid_after_utc)  # the last moment it is valid


# --- fetching the certificate

class Counting(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.urls: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        return await self.inner.handle_async_request(request)


async def test_a_certificate_is_fetched_once_and_kept_by_url() -> None:
    transport = Counting(certificate_transport())
    certificates = SigningCertificates()
    first = await certificates.certificate(CERT_URL, transport)
    assert first == default_signer().certificate
    assert await certificates.certificate(CERT_URL, transport) is first
    assert transport.urls == [CERT_URL]
    other = CERT_URL.replace("joinedup-test", "another")
    with pytest.raises(CertificateUnavailable):  # another URL is fetched (404 here)
        await certificates.certificate(other, transport)
    assert transport.urls == [CERT_URL, other]


async def test_two_apps_keep_their_own_certificates() -> None:
    transport = Counting(certificate_transport())
    await SigningCertificates().certificate(CERT_URL, transport)
    await SigningCertificates().certificate(CERT_URL, transport)
    assert len(transport.urls) == 2


def answering(response: httpx.Response | Exception) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(response, Exception):
            raise response
        return response
    return httpx.MockTransport(answer)


@pytest.mark.parametrize("transport", [
    answering(httpx.Response(404)),
    answering(httpx.Response(500)),
    answering(httpx.Response(301, headers={"Location": "https://evil.example/c.pem"})),
    answering(httpx.Response(200, content=b"not a certificate")),
    answering(httpx.Response(200, content=b"-----BEGIN CERTIFICATE-----\n" * 5000)),
    answering(httpx.ConnectError("refused")),
    answering(httpx.ReadTimeout("slow")),
], ids=["404", "500", "redirect", "not-pem", "too-large", "connect", "timeout"])
async def test_a_certificate_that_cannot_be_had_is_unavailable_and_not_kept(
        transport: httpx.MockTransport) -> None:
    certificates = SigningCertificates()
    with pytest.raises(CertificateUnavailable) as unavailable:
        await certificates.certificate(CERT_URL, transport)
    assert "evil" not in unavailable.value.reason
    # nothing was kept: the next delivery fetches again, and gets it
    assert await certificates.certificate(CERT_URL, certificate_transport())


async def test_a_certificate_with_a_key_that_is_not_rsa_is_unavailable() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    pem = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
           .public_key(key.public_key()).serial_number(1)
           .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=1))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    with pytest.raises(CertificateUnavailable):
        await SigningCertificates().certificate(CERT_URL, answering(
            httpx.Response(200, content=pem)))
