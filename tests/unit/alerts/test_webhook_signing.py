"""Standard Webhooks signatures, checked against the published library (standardwebhooks)."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from services.alerts.webhooks import signing

raw_keys = st.binary(min_size=signing.SECRET_BYTES, max_size=signing.SECRET_BYTES)
ids = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="-_"),
              min_size=1, max_size=60)


def test_a_secret_is_whsec_and_base64_of_32_bytes() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert signing.new_secret() != secret
    assert signing.secret_bytes(secret) == base64.b64decode(secret[6:])


def test_a_secret_of_another_length_is_refused() -> None:
    with pytest.raises(ValueError):
        signing.new_secret(b"short")
    with pytest.raises(ValueError):
        signing.secret_bytes("whsec_not base64!")


@given(raw=raw_keys, delivery_id=ids, body=st.binary(max_size=2000))
def test_the_published_library_verifies_any_body(raw: bytes, delivery_id: str,
                                                 body: bytes) -> None:
    secret = signing.new_secret(raw)
    now = int(time.time())
    headers = signing.headers([raw], delivery_id, now, body)
    Webhook(secret).verify(body, headers, json_parse=False)
    signing.verify(body, headers, secret, now)


@given(raw=raw_keys, delivery_id=ids, body=st.binary(max_size=500),
       stamp=st.integers(min_value=0, max_value=4_000_000_000))
def test_our_signature_is_the_published_one(raw: bytes, delivery_id: str, body: bytes,
                                            stamp: int) -> None:
    ours = signing.signature(raw, delivery_id, stamp, body)
    theirs = Webhook(signing.new_secret(raw)).sign(
        delivery_id, datetime.fromtimestamp(stamp, UTC), body)
    assert ours == theirs


@given(keys=st.lists(raw_keys, min_size=2, max_size=3, unique=True), body=st.binary(max_size=300))
def test_during_a_rotation_every_live_secret_signs_and_each_verifies(keys: list[bytes],
                                                                    body: bytes) -> None:
    now = int(time.time())
    headers = signing.headers(keys, "msg_2d7c", now, body)
    assert len(headers["webhook-signature"].split(" ")) == len(keys)
    for key in keys:
        Webhook(signing.new_secret(key)).verify(body, headers, json_parse=False)


@given(raw=raw_keys, other=raw_keys, body=st.binary(min_size=1, max_size=300))
def test_another_secret_or_a_changed_body_does_not_verify(raw: bytes, other: bytes,
                                                          body: bytes) -> None:
    now = int(time.time())
    headers = signing.headers([raw], "msg_1", now, body)
    if other != raw:
        with pytest.raises(signing.SignatureError):
            signing.verify(body, headers, other, now)
        with pytest.raises(WebhookVerificationError):
            Webhook(signing.new_secret(other)).verify(body, headers, json_parse=False)
    changed = bytes([body[0] ^ 1]) + body[1:]
    with pytest.raises(signing.SignatureError):
        signing.verify(changed, headers, raw, now)


def test_a_timestamp_outside_the_tolerance_does_not_verify() -> None:
    key = b"k" * 32
    headers = signing.headers([key], "msg_1", 1_000_000, b"{}")
    signing.verify(b"{}", headers, key, 1_000_000 + 300)
    for now in (1_000_000 + 301, 1_000_000 - 301):
        with pytest.raises(signing.SignatureError, match="too old or too new"):
            signing.verify(b"{}", headers, key, now)


def test_missing_headers_do_not_verify() -> None:
    key = b"k" * 32
    headers = signing.headers([key], "msg_1", 1_000_000, b"{}")
    for missing in headers:
        partial = {k: v for k, v in headers.items() if k != missing}
        with pytest.raises(signing.SignatureError, match="missing"):
            signing.verify(b"{}", partial, key, 1_000_000)


def test_an_endpoint_with_no_live_secret_cannot_sign() -> None:
    with pytest.raises(ValueError):
        signing.headers([], "msg_1", 1, b"")
