"""Signing SNS deliveries in tests as SNS does: an RSA key and a self-signed certificate made
here, and the string to sign built on its own from AWS's documentation (not with the
gateway's code, so a mistake there is not repeated here and hidden).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from services.common.settings import Settings
from services.ingest.bootstrap import server
from services.ingest.entrypoints.hmpps import sns_transport
from services.stack.ports import free_port
from tests.servers import serving

#: Where the test certificate is said to be: SNS's host, a .pem (what the gateway fetches).
CERT_URL = "https://sns.eu-west-2.amazonaws.com/SimpleNotificationService-joinedup-test.pem"
#: The fields SNS signs, in the order it signs them (AWS, "Verifying the signatures of
#: Amazon SNS messages"); Subject only when the notification has one.
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                       "TopicArn", "Type")


@dataclass(frozen=True)
class Signer:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    url: str = CERT_URL

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def make_signer(not_before: datetime | None = None, not_after: datetime | None = None,
                url: str = CERT_URL) -> Signer:
    """A new key and a self-signed certificate for it, valid from a day ago for a year
    unless told otherwise."""
    now = datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before or now - timedelta(days=1))
                   .not_valid_after(not_after or now + timedelta(days=365))
                   .sign(key, hashes.SHA256()))
    return Signer(key, certificate, url)


@cache
def default_signer() -> Signer:
    """One key for a test run: a 2048-bit key takes a while to make."""
    return make_signer()


def canonical(envelope: Mapping[str, Any]) -> bytes:
    fields = NOTIFICATION_FIELDS if envelope["Type"] == "Notification" else CONFIRMATION_FIELDS
    # surrogatepass: a generated body may hold a lone surrogate (SNS never would); it is
    # signed all the same, so the gateway is the one to judge it.
    return "".join(f"{name}\n{envelope[name]}\n" for name in fields
                   if name in envelope).encode("utf-8", "surrogatepass")


def sign(envelope: Mapping[str, Any], signer: Signer | None = None, version: str = "2"
         ) -> dict[str, Any]:
    """``envelope`` as SNS would deliver it: SignatureVersion, SigningCertURL, Signature."""
    signer = signer or default_signer()
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = signer.key.sign(canonical(envelope), padding.PKCS1v15(), digest)
    return {**envelope, "SignatureVersion": version, "SigningCertURL": signer.url,
            "Signature": base64.b64encode(signature).decode()}


def certificate_transport(signer: Signer | None = None) -> httpx.MockTransport:
    """SNS as far as the gateway reaches it: the test certificate at its URL, 200 for a
    SubscribeURL, 404 for anything else."""
    signer = signer or default_signer()

    def answer(request: httpx.Request) -> httpx.Response:
        if str(request.url) == signer.url:
            return httpx.Response(200, content=signer.pem)
        if request.url.path == "/":
            return httpx.Response(200)
        return httpx.Response(404)
    return httpx.MockTransport(answer)


@contextmanager
def sns_gateway(settings: Settings, transport: httpx.AsyncBaseTransport) -> Iterator[str]:
    """The gateway as ``gateway_thread`` runs it, reaching SNS over ``transport``."""
    port = free_port()
    gateway = server(settings, migrate=False, port=port, log_level="warning")
    gateway.config.app.app.dependency_overrides[sns_transport] = lambda: transport
    with serving(gateway, "gateway", port) as url:
        yield url
