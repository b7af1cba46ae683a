"""The SNS envelope (what is taken, what is refused, which confirmation URLs are fetched) and
the mapping file's checks at start."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.formats.hmpps import sns
from services.ingest.formats.hmpps.mapping import DEFAULT_PATH, MappingError, parse_mapping

FIXTURES = Path(__file__).parents[2] / "fixtures" / "hmpps"


def envelope(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


def test_a_notification_carries_the_domain_event_as_published() -> None:
    body = envelope("sns-notification")
    taken = sns.read_envelope(body, "Notification")
    assert isinstance(taken, sns.Notification)
    assert json.loads(taken.message) == json.loads(body["Message"])
    assert taken.message_id == body["MessageId"]


def test_a_subscription_confirmation_names_the_url_to_fetch() -> None:
    body = envelope("sns-subscription-confirmation")
    taken = sns.read_envelope(body)
    assert isinstance(taken, sns.Confirmation)
    assert taken.subscribe_url == body["SubscribeURL"]


@pytest.mark.parametrize("url", [
    "https://sns.eu-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=x",
    "https://sns.us-gov-west-1.amazonaws.com/?Action=ConfirmSubscription",
    "https://sns.cn-north-1.amazonaws.com.cn/?Action=ConfirmSubscription",
])
def test_sns_urls_are_fetched(url: str) -> None:
    assert sns.is_sns_url(url)


@pytest.mark.parametrize("url", [
    "http://sns.eu-west-2.amazonaws.com/?Action=ConfirmSubscription",        # not TLS
    "https://sns.eu-west-2.amazonaws.com.evil.example/?Action=Confirm",      # another host
    "https://evil.example/?https://sns.eu-west-2.amazonaws.com/",
    "https://sns.eu-west-2.amazonaws.com@evil.example/",                     # userinfo trick
    "https://user:pw@sns.eu-west-2.amazonaws.com/",
    "https://sns.eu-west-2.amazonaws.com:8443/",
    "https://sns.eu-west-2.amazonaws.com/../admin",
    "https://sqs.eu-west-2.amazonaws.com/",
    "https://127.0.0.1/", "file:///etc/passwd", "", "https://[::1/",
])
def test_nothing_else_is_fetched(url: str) -> None:
    assert not sns.is_sns_url(url)
    body = {**envelope("sns-subscription-confirmation"), "SubscribeURL": url}
    with pytest.raises(sns.EnvelopeError, match="SubscribeURL"):
        sns.read_envelope(body)


@pytest.mark.parametrize(("change", "field"), [
    ({"Type": "Nonsense"}, "Type"),
    ({"Message": {"eventType": "x"}}, "Message"),
    ({"Message": None}, "Message"),
    ({"MessageId": [["not", "a", "string"]]}, "MessageId"),   # found by the fuzzer
    ({"MessageAttributes": "eventType"}, "MessageAttributes"),
    ({"TopicArn": "not-an-arn"}, "TopicArn"),
])
def test_a_broken_envelope_is_refused_naming_the_field(change: dict[str, Any],
                                                       field: str) -> None:
    with pytest.raises(sns.EnvelopeError) as refused:
        sns.read_envelope({**envelope("sns-notification"), **change})
    assert str(refused.value).startswith(field + ":")


def test_the_type_header_must_agree_with_the_body() -> None:
    with pytest.raises(sns.EnvelopeError, match="x-amz-sns-message-type"):
        sns.read_envelope(envelope("sns-notification"), "SubscriptionConfirmation")


def test_an_unsubscribe_confirmation_is_recognised() -> None:
    body = {**envelope("sns-subscription-confirmation"), "Type": "UnsubscribeConfirmation"}
    assert isinstance(sns.read_envelope(body), sns.Unsubscribed)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                    lambda c: st.lists(c, max_size=3)
                    | st.dictionaries(st.sampled_from(["Type", "Message", "SubscribeURL",
                                                       "TopicArn", "MessageId"]), c,
                                      max_size=5), max_leaves=12))
def test_any_body_is_an_envelope_or_an_envelope_error(body: Any) -> None:
    try:
        taken = sns.read_envelope(body)
    except sns.EnvelopeError as exc:
        assert ": " in str(exc)  # a field, then the reason
    else:
        assert isinstance(taken, sns.Notification | sns.Confirmation | sns.Unsubscribed)


# --- the mapping file ------------------------------------------------------------------------

def packaged() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_PATH.read_text())


def test_the_packaged_mapping_covers_the_required_event_types() -> None:
    mapping = parse_mapping(packaged())
    assert {
        "prison-offender-events.prisoner.received", "prison-offender-events.prisoner.released",
        "prisoner-offender-search.prisoner.released", "prison-offender-events.prisoner.merged",
        "accommodation.cas3.referral.submitted", "accommodation.cas3.booking.confirmed",
        "accommodation.cas3.person.arrived", "approved-premises.booking.made",
        "person.community.manager.allocated"} <= set(mapping.events)


def _broken(change: Any) -> str:
    document = copy.deepcopy(packaged())
    change(document)
    with pytest.raises(MappingError) as refused:
        parse_mapping(document)
    return str(refused.value)


@pytest.mark.parametrize(("change", "words"), [
    (lambda d: d.pop("version"), "version"),
    (lambda d: d["events"][0].update(becomes="transition.happened"), "not a joinedup event"),
    (lambda d: d["events"][0].update(service_kind="JAIL"), "service_kind"),
    (lambda d: d["events"][0].update(key=["nomsNumber"]), ".key"),
    (lambda d: d["events"][0]["payload"].update(colour="red"), "not a field of Transition"),
    (lambda d: d["events"][0]["payload"].pop("kind"), "missing kind"),
    (lambda d: d["events"][0]["payload"].update(reason={"from": "description"}), ".from"),
    (lambda d: d["events"][0]["payload"].update(in_custody_treatment="yes"), "only text"),
    (lambda d: d["events"][1].update(hmpps=d["events"][0]["hmpps"]), "mapped twice"),
    (lambda d: d["events"][0].update(enums={"additionalInformation.reason": []}), ".enums"),
    (lambda d: d["events"][0].update(unexpected=1), "unknown field"),
])
def test_a_broken_mapping_stops_the_start_naming_the_entry(change: Any, words: str) -> None:
    assert words in _broken(change)
