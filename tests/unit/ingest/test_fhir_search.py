"""Reading GET /fhir/Task's parameters, and its page cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.formats.fhir import search


def test_last_updated_prefixes_fill_their_bounds() -> None:
    gt, ge, lt, le = search.bounds(["gt2026-03-02T09:00:00Z", "le2026-03-03"])
    assert gt == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert le == datetime(2026, 3, 3, tzinfo=UTC)
    assert ge is None and lt is None
    # "+01:00" sent unencoded arrives as " 01:00"
    [gt, *_] = search.bounds(["gt2026-03-02T10:00:00 01:00"])
    assert gt == datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.mark.parametrize("value", ["2026-03-02", "eq2026-03-02", "gtyesterday", "gt", ""])
def test_a_last_updated_without_a_prefix_or_an_instant_is_refused(value: str) -> None:
    with pytest.raises(search.SearchRefused) as refused:
        search.bounds([value])
    assert refused.value.issue.expression == "_lastUpdated"
    assert "yesterday" not in refused.value.issue.diagnostics


def test_organizations_and_page_sizes() -> None:
    assert search.organization("owner", "Organization/leeds-housing") == "leeds-housing"
    assert search.organization("owner", None) is None
    for bad in ("Organization/", "Organization/a/b", "Practitioner/x/y"):
        with pytest.raises(search.SearchRefused):
            search.organization("owner", bad)
    assert search.page_size(None) == search.DEFAULT_COUNT
    assert search.page_size("7") == 7
    for bad in ("0", "-1", "x", str(search.MAX_COUNT + 1)):
        with pytest.raises(search.SearchRefused):
            search.page_size(bad)


@given(st.datetimes(timezones=st.just(UTC)), st.text(min_size=1, max_size=80))
def test_a_page_cursor_reads_back_what_it_encodes(when: datetime, key: str) -> None:
    assert search.cursor(search.encode(when, key)) == (when, key)


def test_a_forged_cursor_is_refused_and_no_cursor_is_the_first_page() -> None:
    assert search.cursor(None) == (None, None)
    for forged in ("xyz", "e30", "WzFd"):   # not base64 JSON; {}; [1]
        with pytest.raises(search.SearchRefused):
            search.cursor(forged)
    other = datetime(2026, 3, 2, 10, tzinfo=timezone(timedelta(hours=1)))
    assert search.cursor(search.encode(other, "k"))[0] == other
