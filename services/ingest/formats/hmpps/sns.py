"""The AWS SNS HTTP(S) delivery envelope around an HMPPS domain event, read purely.

SNS posts JSON with ``Type``: ``Notification`` (the domain event JSON as the ``Message``
string, its type again in ``MessageAttributes.eventType``), ``SubscriptionConfirmation``
(fetch ``SubscribeURL`` to confirm) or ``UnsubscribeConfirmation``. Only an
``https://sns.<region>.amazonaws.com/`` URL is ever fetched, so a forged confirmation cannot
make the gateway call anywhere else; the same holds for ``SigningCertURL`` (a ``.pem`` on that
host), whose certificate checks the delivery's signature (``sns_signature``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import SplitResult, urlsplit

NOTIFICATION: Final = "Notification"
SUBSCRIPTION: Final = "SubscriptionConfirmation"
UNSUBSCRIBE: Final = "UnsubscribeConfirmation"
#: sns.<region>.amazonaws.com (and the China partition's .com.cn)
_SNS_HOST: Final = re.compile(r"^sns\.[a-z]{2}(?:-[a-z]+)+-\d\.amazonaws\.com(?:\.cn)?$")
_MESSAGE_ID: Final = re.compile(r"^[A-Za-z0-9-]{1,100}$")


class EnvelopeError(ValueError):
    """Not an SNS delivery joinedup can take: names the field, never its value."""


@dataclass(frozen=True, slots=True)
class Notification:
    message: bytes              # the domain event JSON, as published
    message_id: str | None      # SNS's id of this delivery (not personal data)


@dataclass(frozen=True, slots=True)
class Confirmation:
    subscribe_url: str
    topic_arn: str


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    topic_arn: str


Envelope = Notification | Confirmation | Unsubscribed


def read_envelope(body: Any, type_header: str | None = None) -> Envelope:
    """``body`` is the parsed request JSON; ``type_header`` SNS's ``x-amz-sns-message-type``
    (when given, it must agree with ``Type``)."""
    if not isinstance(body, dict):
        raise EnvelopeError("body: must be an SNS message (a JSON object)")
    kind = body.get("Type")
    if kind not in (NOTIFICATION, SUBSCRIPTION, UNSUBSCRIBE):
        raise EnvelopeError("Type: must be Notification, SubscriptionConfirmation or "
                            "UnsubscribeConfirmation")
    if type_header is not None and type_header != kind:
        raise EnvelopeError("x-amz-sns-message-type: does not match Type")
    if kind == NOTIFICATION:
        message = body.get("Message")
        if not isinstance(message, str):
            raise EnvelopeError("Message: must be the domain event as a JSON string")
        _optional(body, "MessageId", str, "a string")
        _optional(body, "MessageAttributes", dict, "an object")
        if "TopicArn" in body:
            _topic_arn(body["TopicArn"])
        message_id = body.get("MessageId")
        return Notification(message.encode("utf-8", "surrogatepass"),
                            message_id if isinstance(message_id, str)
                            and _MESSAGE_ID.match(message_id) else None)
    topic = _topic_arn(body.get("TopicArn"))
    if kind == UNSUBSCRIBE:
        return Unsubscribed(topic)
    url = body.get("SubscribeURL")
    if not isinstance(url, str) or not is_sns_url(url):
        raise EnvelopeError("SubscribeURL: must be an https://sns.<region>.amazonaws.com/ URL")
    return Confirmation(url, topic)


def _optional(body: dict[str, Any], name: str, kind: type, what: str) -> None:
    """An envelope field SNS always sends in one shape: any other shape is not SNS."""
    if name in body and not isinstance(body[name], kind):
        raise EnvelopeError(f"{name}: must be {what}")


def _topic_arn(topic: Any) -> str:
    if not isinstance(topic, str) or not topic.startswith("arn:aws"):
        raise EnvelopeError("TopicArn: must be an SNS topic ARN")
    return topic


def is_sns_url(url: str) -> bool:
    """A SubscribeURL joinedup fetches: SNS's API root, query and all."""
    parts = _on_sns_host(url)
    return parts is not None and parts.path == "/"


def is_sns_certificate_url(url: str) -> bool:
    """A SigningCertURL joinedup fetches: a .pem file on SNS's own host, nothing after it,
    so a forged delivery cannot name a certificate of its own making."""
    parts = _on_sns_host(url)
    return (parts is not None and parts.path.endswith(".pem") and ".." not in parts.path
            and not parts.query and not parts.fragment)


def _on_sns_host(url: str) -> SplitResult | None:
    """``url``'s parts if it is https on an SNS host, default port, no user info."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if (parts.scheme == "https" and port in (None, 443) and not parts.username
            and not parts.password and _SNS_HOST.match(parts.hostname or "")):
        return parts
    return None
