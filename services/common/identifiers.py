"""Person identifiers of the agencies: checks and synthetic generators.

Every ``*_problem`` function returns a reason without the value (identifiers are personal
data, and reasons end up in logs and dead-letter headers), or None when the value is valid.

- NHS number: 10 digits, the last a modulus-11 check digit (NHS Data Dictionary).
- NOMS number (prison): letter, 4 digits, 2 letters, e.g. ``A1234BC``.
- CRN (probation case reference number, nDelius): letter + 6 digits, e.g. ``X123456``.
- PNC id (Police National Computer): ``YYYY/NNNNNNNX``; agencies copy it in several forms
  (2-digit years, fewer digits, leading zeros dropped), so its check is deliberately loose.
"""

from __future__ import annotations

import functools
import random
import re
import string
from collections.abc import Callable

_NHS_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_NOMS = re.compile(r"[A-Z][0-9]{4}[A-Z]{2}", re.ASCII)
_CRN = re.compile(r"[A-Z][0-9]{6}", re.ASCII)
_PNC = re.compile(r"(?:[0-9]{2}){1,2}/[0-9]{1,7}[A-Z]", re.ASCII)
#: The PNC check character: (2-digit year and serial as one number) mod 23 indexes this.
_PNC_CHECK = "ZABCDEFGHJKLMNPQRTUVWXY"
LOCAL_ID_MAX = 64


# --- NHS number ------------------------------------------------------------------------------

def nhs_check_digit(nine_digits: str) -> int | None:
    """The check digit for the first nine digits; None when it would be 10 (never issued)."""
    total = sum(int(d) * w for d, w in zip(nine_digits, _NHS_WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 10:
        return None
    return 0 if check == 11 else check


def nhs_number_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be a string of 10 digits"
    # isascii(): str.isdigit() also accepts other scripts' digits, which int() then reads.
    if len(value) != 10 or not (value.isascii() and value.isdigit()):
        return "must be 10 digits"
    check = nhs_check_digit(value[:9])
    if check is None:
        return "check digit would be 10, so the number cannot be issued"
    return None if check == int(value[9]) else "check digit does not match"


def nhs_number_is_valid(value: str) -> bool:
    return nhs_number_problem(value) is None


def make_nhs_number(rng: random.Random, prefix: str = "") -> str:
    """A valid NHS number starting with ``prefix``; bases whose check digit is 10 are skipped.

    Synthetic data should pass ``prefix="999"``: NHS England keeps 999 000 0000 - 999 999 9999
    for testing and never issues them, so a made-up number can never be a real person's.
    """
    if len(prefix) > 8 or not (prefix.isascii() and (prefix.isdigit() or not prefix)):
        raise ValueError("prefix must be at most 8 digits")
    while True:
        base = prefix + "".join(rng.choice(string.digits) for _ in range(9 - len(prefix)))
        if base[0] == "0":  # numbers are issued from 1; a leading zero reads as a typo
            continue
        check = nhs_check_digit(base)
        if check is not None:
            return f"{base}{check}"


# --- NOMS number, CRN, PNC id ----------------------------------------------------------------

def noms_number_problem(value: object) -> str | None:
    if not isinstance(value, str) or not _NOMS.fullmatch(value):
        return "must be a letter, 4 digits and 2 letters (like A1234BC)"
    return None


def make_noms_number(rng: random.Random) -> str:
    letters = string.ascii_uppercase
    return (rng.choice(letters) + f"{rng.randrange(10_000):04d}"
            + rng.choice(letters) + rng.choice(letters))


def crn_problem(value: object) -> str | None:
    if not isinstance(value, str) or not _CRN.fullmatch(value):
        return "must be a letter and 6 digits (like X123456)"
    return None


def make_crn(rng: random.Random) -> str:
    return rng.choice(string.ascii_uppercase) + f"{rng.randrange(1_000_000):06d}"


def pnc_check_character(year: int, serial: int) -> str:
    return _PNC_CHECK[int(f"{year % 100:02d}{serial:07d}") % 23]


def pnc_id_problem(value: object) -> str | None:
    if not isinstance(value, str) or not _PNC.fullmatch(value):
        return "must look like YYYY/NNNNNNNX (year, serial number, check letter)"
    return None


def make_pnc_id(rng: random.Random, year: int | None = None) -> str:
    year = rng.randrange(1995, 2026) if year is None else year
    serial = rng.randrange(1, 10_000_000)
    return f"{year:04d}/{serial:07d}{pnc_check_character(year, serial)}"


def local_id_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must not be empty"
    if len(value) > LOCAL_ID_MAX:
        return f"must be at most {LOCAL_ID_MAX} characters"
    return None


_PROBLEM_BY_SCHEME: dict[str, Callable[[object], str | None]] = {
    "nhs_number": nhs_number_problem,
    "noms_number": noms_number_problem,
    "crn": crn_problem,
    "pnc_id": pnc_id_problem,
    "local_id": local_id_problem,
}


def identifier_problem(scheme: str, value: object) -> str | None:
    """Why ``value`` is not a valid identifier of ``scheme``; None if it is."""
    if isinstance(value, str):
        return _text_identifier_problem(scheme, value)
    check = _PROBLEM_BY_SCHEME.get(scheme)
    if check is None:
        return "unknown identifier scheme"
    return check(value)


@functools.lru_cache(maxsize=1 << 16)
def _text_identifier_problem(scheme: str, value: str) -> str | None:
    """Memoised: a person's identifiers come again with each of their events, and the
    processor checks every event (the NHS number's mod-11 alone is ~8 µs). In memory only."""
    check = _PROBLEM_BY_SCHEME.get(scheme)
    if check is None:
        return "unknown identifier scheme"
    return check(value)
