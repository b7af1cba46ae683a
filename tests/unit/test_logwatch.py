"""The session's log watch (tests/logwatch.py) finds identifier values by shape and check,
and leaves ids, offsets and timestamps alone."""

from __future__ import annotations

import logging
import random
import uuid

from services.common.identifiers import make_nhs_number
from tests.logwatch import SessionLog, identifiers_in


def test_it_finds_each_strong_scheme_and_the_tests_local_ids() -> None:
    text = ("nhs 9434765919 noms A1234BC crn X123456 pnc 2012/0052834K local RIO-0042 "
            "and HOUSING-7790")
    assert sorted(identifiers_in(text)) == sorted(
        ["nhs_number", "noms_number", "crn", "pnc_id", "local_id", "local_id"])


def test_it_leaves_ids_offsets_and_timestamps_alone() -> None:
    text = (f"event {uuid.uuid4()} offset 1234567890123 at 2026-03-02T09:00:00+00:00 "
            f"partition 3 took 0.0123 s; 9434765918 fails its check digit; A1234B is short")
    assert identifiers_in(text) == []


def test_a_record_is_searched_as_production_prints_it() -> None:
    """Through the production filter: an NHS number is scrubbed before the search sees it;
    a local id has no shape the filter knows, so the watch reports it (logger and scheme)."""
    watch = SessionLog()
    logger = logging.getLogger("tests.logwatch.probe")
    logger.propagate = False
    logger.addHandler(watch)
    try:
        logger.warning("topic %s", "t.person-events")
        logger.warning("an event for %s", make_nhs_number(random.Random(3), prefix="999"))
        logger.warning("a record %s", "RIO-0042")
    finally:
        logger.removeHandler(watch)
    assert watch.records == 3
    assert [(f.logger, f.level, f.schemes) for f in watch.findings] == [
        ("tests.logwatch.probe", "WARNING", ["local_id"])]
