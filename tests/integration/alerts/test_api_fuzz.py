"""The alert API against its own OpenAPI description (schemathesis): schema-valid requests
are answered as described (refusals are 4xx problem details, never a 5xx), and the alert
ids the fuzzer sends are mostly real alerts of the caller's team, so cases reach the work
on an alert past "no such alert"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from services.alerts.entrypoints.http import create_app
from services.common.settings import Settings
from tests.integration.alerts.conftest import OPTIONS, DutyWorld

pytestmark = pytest.mark.integration

schema = schemathesis.openapi.from_dict(
    create_app(Settings(environment="test")).openapi(),
    config=schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": False}}}))
ALERTS: list[str] = []


@schema.hook
def flatmap_case(context: schemathesis.HookContext, case: schemathesis.Case
                 ) -> st.SearchStrategy[schemathesis.Case]:
    params = case.path_parameters or {}
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    if negative or not ALERTS or not ({"alert_id", "team_id"} & set(params)):
        return st.just(case)  # a malformed case stays malformed: it must be refused

    def real(n: int) -> schemathesis.Case:
        if n < len(ALERTS):
            swapped = dict(params)
            if "alert_id" in params:
                swapped["alert_id"] = ALERTS[n]
            if "team_id" in params:
                swapped["team_id"] = OPTIONS
            case.path_parameters = swapped
        return case

    return st.integers(0, len(ALERTS)).map(real)


@pytest.fixture
async def fuzz_target(duty: DutyWorld) -> Iterator[tuple[str, str]]:
    if not ALERTS:
        ALERTS.extend([await duty.raise_alert(), await duty.raise_alert()])
    yield duty.url, duty.tokens["housing.officer"]


@schema.exclude(path_regex=r".*/stream$").parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
def test_the_alert_api_honours_its_openapi_description(
        case: schemathesis.Case, fuzz_target: tuple[str, str]) -> None:
    url, token = fuzz_target
    # Schema-valid actions are refused for reasons a schema cannot state (a stale version,
    # an assignee outside the team, a resolved alert): 4xx, never 5xx.
    case.call_and_validate(base_url=url, headers={"Authorization": f"Bearer {token}"},
                           excluded_checks=[positive_data_acceptance])
