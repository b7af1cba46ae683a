"""The rule file: the shipped pack loads; bad files are refused with line, rule, field, reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.processor.domain.rules import RuleFileError, default_pack_path, load_rule_pack

GOOD = '''version = "2026.11.1"

[[rules]]
id = "mh-72h-follow-up"
kind = "deadline"
category = "MENTAL_HEALTH"
title = "No follow-up"
severity = "high"
route = "mental-health:{area}"
expected = "a follow-up"
explanation = "why"
source = "NHS Standard Contract"

[rules.trigger]
event_type = "transition.occurred"
where = { "payload.kind" = "MENTAL_HEALTH_DISCHARGE" }

[rules.expect]
event_type = ["contact.follow_up", "contact.attended"]

[rules.window]
within = "72h"
'''


def refused(text: str) -> str:
    with pytest.raises(RuleFileError) as caught:
        load_rule_pack(text)
    return str(caught.value)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_shipped_pack_loads_with_every_rule_citing_its_source() -> None:
    pack = load_rule_pack(default_pack_path())
    assert pack.version == "2026.12.1"
    assert len(pack.rules) == 10 and len(pack.by_id) == 10
    assert {r.id: r.category for r in pack.rules}["release-substance-treatment-21d"] == (
        "SUBSTANCE_USE")
    assert all(rule.source and rule.title and rule.version == pack.version for rule in pack.rules)
    assert load_rule_pack(str(default_pack_path())).rules == pack.rules


def test_a_good_minimal_file_loads() -> None:
    rule = load_rule_pack(GOOD).rules[0]
    assert rule.window is not None and rule.window.within is not None
    assert rule.window.within.total_seconds() == 72 * 3600


def test_bad_duration_names_line_rule_field_and_reason() -> None:
    text = GOOD.replace('within = "72h"', 'within = "72 hourz"')
    message = refused(text)
    assert message == (f"<rule text> line {line_of(text, '72 hourz')}, rule 'mh-72h-follow-up', "
                       "field window.within: '72 hourz' is not a duration like '72h' or '5d'")


def test_file_name_is_named_when_loading_a_path(tmp_path: Path) -> None:
    path = tmp_path / "pack.toml"
    path.write_text(GOOD.replace('within = "72h"', 'within = "3 days"'))
    assert refused(path).startswith("pack.toml line 22, rule 'mh-72h-follow-up'")  # type: ignore[arg-type]


@pytest.mark.parametrize(("change", "field", "reason"), [
    (('severity = "high"', 'severity = "urgent"'), "severity", "must be one of low, medium"),
    (('title = "No follow-up"\n', ''), "title", "is missing"),
    (('source = "NHS Standard Contract"\n', ''), "source", "is missing"),
    (('"payload.kind" = "MENTAL_HEALTH_DISCHARGE"', '"payload.kind" = "MENTAL_HEALTH_DISCHARG"'),
     "trigger.where.payload.kind", "unknown value 'MENTAL_HEALTH_DISCHARG'"),
    (('event_type = "transition.occurred"', 'event_type = "transition.happened"'),
     "trigger.event_type", "unknown event type 'transition.happened'"),
    (('"payload.kind" =', '"payload.colour" ='), "trigger.where.payload.colour",
     "a transition payload has no field 'colour'"),
    (('route = "mental-health:{area}"', 'route = "mh:{ward}"'), "route",
     "unknown placeholder {ward}"),
    (('within = "72h"', 'within = "72h"\nwobble = 1'), "window.wobble", "unknown key"),
    (('within = "72h"', 'within = "72h"\nworking_days = 5'), "window",
     "exactly one of within, working_days, before"),
    (('kind = "deadline"', 'kind = "eventually"'), "kind", "must be one of deadline"),
    (('[rules.expect]', '[rules.expect]\nwhere = { "source.service_kind" = "WIZARDS" }\n#'),
     "expect.where.source.service_kind", "unknown value 'WIZARDS'"),
])
def test_invalid_rules_are_refused_with_a_clear_reason(change, field, reason) -> None:  # type: ignore[no-untyped-def]
    message = refused(GOOD.replace(*change))
    assert f"rule 'mh-72h-follow-up', field {field}: " in message
    assert reason in message


def test_duplicate_ids_and_every_problem_reported_at_once() -> None:
    second = GOOD.split("\n", 2)[2].replace('within = "72h"', 'within = "72x"')
    message = refused(GOOD + "\n" + second)
    lines = message.splitlines()
    assert any("field id: duplicate rule id" in line for line in lines)
    assert any("'72x' is not a duration" in line for line in lines)
    second_id_line = [i for i, ln in enumerate((GOOD + "\n" + second).splitlines(), 1)
                      if ln.startswith("id =")][1]
    assert (f"<rule text> line {second_id_line}, rule 'mh-72h-follow-up', field id: "
            "duplicate rule id") in lines
    assert any(ln.startswith(f"<rule text> line {second_id_line + 18}, rule 'mh-72h-follow-up', "
                             "field window.within: '72x'") for ln in lines)


def test_every_rule_says_what_category_its_alerts_reveal() -> None:
    assert "field category: is required, one of GENERAL" in refused(
        GOOD.replace('category = "MENTAL_HEALTH"\n', ''))
    assert "field category: is required" in refused(
        GOOD.replace('category = "MENTAL_HEALTH"', 'category = "SECRET"'))
    assert load_rule_pack(GOOD).rules[0].category == "MENTAL_HEALTH"


def test_not_toml_and_missing_version_and_bad_bool() -> None:
    assert "not valid TOML" in refused('version = "1"\n[[rules]\n')
    assert "field version: the pack needs a version" in refused(GOOD.replace(
        'version = "2026.11.1"', 'edition = "1"'))
    text = GOOD.replace('"payload.kind" = "MENTAL_HEALTH_DISCHARGE"',
                        '"payload.in_custody_treatment" = "yes"')
    assert "'yes' is not true or false" in refused(text)


def test_a_deadline_rule_without_a_window_and_a_pair_field_typo() -> None:
    assert "a deadline rule needs a [window] section" in refused(
        GOOD.replace('[rules.window]\nwithin = "72h"\n', ''))
    pair = GOOD.replace('kind = "deadline"', 'kind = "pair"').replace(
        '[rules.expect]\nevent_type = ["contact.follow_up", "contact.attended"]\n', '').replace(
        '[rules.window]\nwithin = "72h"\n',
        '[rules.pair]\nwithin = "90d"\ncross = [["payload.kind", "payload.kindd"]]\n')
    assert "field pair.cross: a transition payload has no field 'kindd'" in refused(pair)
