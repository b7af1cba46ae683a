"""Synthetic people: identifiers that are valid and unique, an area, and a mix of needs.

Identifiers come from affine permutations of the person's index (``index * step + offset``
modulo the size of the identifier space, with ``step`` coprime to it), so they are unique
within a population without a lookup table, and differ between seeds. NHS numbers are in
the 999 test range, which is never issued to a real person.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from services.common.events import Identifier
from services.common.identifiers import nhs_check_digit, pnc_check_character
from services.simulation.agencies import LEEDS, MANCHESTER, Agency

_STEP = 7_368_787  # coprime with every space below (their prime factors are 2, 3, 5 and 13)
_NOMS_SPACE = 26 * 10_000 * 26 * 26
_CRN_SPACE = 26 * 1_000_000
_SERIAL_SPACE = 10_000_000
NHS_TEST_BASES = 1_000_000  # 999 000 000 - 999 999 999, before the check digit


@dataclass(slots=True)
class Person:
    index: int
    nhs_number: str
    noms_number: str
    crn: str
    pnc_id: str
    area: str
    born: date
    offending: bool           # has a custodial history: prison and probation know them
    mental_health: bool
    substance_use: bool
    domestic_abuse: bool
    care_leaver: bool
    _ids: dict[str, tuple[Identifier, ...]] = field(default_factory=dict, repr=False)

    def identifiers(self, agency: Agency) -> tuple[Identifier, ...]:
        """What this agency records: every agency the NHS number (so they link); prisons add
        the NOMS number, probation the CRN and PNC id, councils and charities their own id."""
        ids = self._ids.get(agency.agency_id)
        if ids is None:
            nhs = Identifier("nhs_number", self.nhs_number)
            kind = agency.service_kind
            if kind == "PRISON":
                ids = (nhs, Identifier("noms_number", self.noms_number))
            elif kind == "PROBATION":
                ids = (nhs, Identifier("crn", self.crn), Identifier("pnc_id", self.pnc_id))
            elif kind in ("HOUSING", "SOCIAL_CARE", "LEAVING_CARE", "VOLUNTARY"):
                salt = sum(map(ord, agency.agency_id))
                local_id = f"{agency.agency_id[:3].upper()}{(self.index * 7919 + salt) % 10**7:07d}"
                ids = (nhs, Identifier("local_id", local_id))
            else:
                ids = (nhs,)
            self._ids[agency.agency_id] = ids
        return ids


def nhs_numbers(seed: int) -> Iterator[str]:
    """Unique valid NHS numbers from the test range, in a seed-dependent order."""
    offset = seed % NHS_TEST_BASES
    for k in range(NHS_TEST_BASES):
        base = f"999{(k * _STEP + offset) % NHS_TEST_BASES:06d}"
        check = nhs_check_digit(base)
        if check is not None:
            yield f"{base}{check}"
    raise ValueError("the NHS test range holds about 909,000 people; simulate fewer")


def _noms(index: int, seed: int) -> str:
    v = (index * _STEP + seed) % _NOMS_SPACE
    v, tail2 = divmod(v, 26)
    v, tail1 = divmod(v, 26)
    head, digits = divmod(v, 10_000)
    letters = string.ascii_uppercase
    return f"{letters[head]}{digits:04d}{letters[tail1]}{letters[tail2]}"


def _crn(index: int, seed: int) -> str:
    head, digits = divmod((index * _STEP + seed) % _CRN_SPACE, 1_000_000)
    return f"{string.ascii_uppercase[head]}{digits:06d}"


def _pnc(index: int, seed: int, year: int) -> str:
    serial = (index * _STEP + seed) % _SERIAL_SPACE
    return f"{year:04d}/{serial:07d}{pnc_check_character(year, serial)}"


def make_person(index: int, seed: int, nhs_number: str, rng: random.Random, today: date) -> Person:
    """One person of a population facing multiple disadvantage (so most have 2+ needs)."""
    young = rng.random() < 0.06  # the care leavers' cohort, turning 18 in the window
    # Care leavers are 17 and turn 18 within about five months of the start.
    age_days = rng.randrange(17 * 365 + 200, 18 * 365) if young else rng.randrange(19 * 365, 64 * 365)
    born = date.fromordinal(today.toordinal() - age_days)
    offending = rng.random() < (0.25 if young else 0.45)
    return Person(
        index=index, nhs_number=nhs_number, noms_number=_noms(index, seed), crn=_crn(index, seed),
        pnc_id=_pnc(index, seed, today.year - rng.randrange(1, 15)),
        area=LEEDS if rng.random() < 0.6 else MANCHESTER, born=born, offending=offending,
        mental_health=rng.random() < 0.45, substance_use=rng.random() < (0.7 if offending else 0.4),
        domestic_abuse=rng.random() < 0.12, care_leaver=young and rng.random() < 0.8,
    )
