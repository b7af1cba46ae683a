"""Every log record of the test session, printed as production prints it (the same
formatter and personal-data filter), searched for identifier values.

A value is flagged when it has an identifier's shape and passes its check (an NHS number
with a valid mod-11 check digit, a NOMS number, a CRN, a PNC id with its check letter), or
is one of the local ids the tests use. ``tests/conftest.py`` installs the handler for the
session and fails the run, naming the loggers, if any line holds one.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from services.common.identifiers import (
    crn_problem,
    nhs_number_problem,
    noms_number_problem,
    pnc_check_character,
)
from services.common.logging import make_formatter
from services.common.redaction import PersonalDataFilter

_CANDIDATES = re.compile(
    r"(?<![\w-])(?:(?P<nhs>\d{10})|(?P<noms>[A-Z]\d{4}[A-Z]{2})|(?P<crn>[A-Z]\d{6})"
    r"|(?P<pnc>(?P<year>\d{2}|\d{4})/(?P<serial>\d{1,7})(?P<check>[A-Z])))(?![\w-])")
#: the local ids the tests give people (local ids have no shape of their own to recognise)
_LOCAL_IDS = re.compile(r"(?<![\w-])(?:RIO|NEB|HOUSING)-\d+(?![\w-])")


def identifiers_in(text: str) -> list[str]:
    """The schemes of the identifier values found in ``text`` (never the values)."""
    found = []
    for m in _CANDIDATES.finditer(text):
        if m["nhs"] and nhs_number_problem(m["nhs"]) is None:
            found.append("nhs_number")
        elif m["noms"] and noms_number_problem(m["noms"]) is None:
            found.append("noms_number")
        elif m["crn"] and crn_problem(m["crn"]) is None:
            found.append("crn")
        elif m["pnc"] and pnc_check_character(int(m["year"]), int(m["serial"])) == m["check"]:
            found.append("pnc_id")
    found += ["local_id" for _ in _LOCAL_IDS.finditer(text)]
    return found


@dataclass
class Finding:
    logger: str
    level: str
    schemes: list[str]


@dataclass
class SessionLog(logging.Handler):
    records: int = 0
    findings: list[Finding] = field(default_factory=list)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self, logging.NOTSET)
        self.setFormatter(make_formatter(json=True))
        self.addFilter(PersonalDataFilter())

    def __hash__(self) -> int:  # handlers are kept in sets by the logging module
        return id(self)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a record that cannot be formatted is searched as it came
            text = f"{record.msg} {record.args}"
        self.records += 1
        schemes = identifiers_in(text)
        if schemes:
            self.findings.append(Finding(record.name, record.levelname, schemes))
