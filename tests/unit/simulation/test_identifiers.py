"""Identifier checks and generators (services.common.identifiers)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.events import IDENTIFIER_SCHEMES
from services.common.identifiers import (
    crn_problem,
    identifier_problem,
    local_id_problem,
    make_crn,
    make_nhs_number,
    make_noms_number,
    make_pnc_id,
    nhs_check_digit,
    nhs_number_is_valid,
    nhs_number_problem,
    noms_number_problem,
    pnc_check_character,
    pnc_id_problem,
)

seeds = st.integers(min_value=0, max_value=2**32)
valid_nhs = seeds.map(lambda seed: make_nhs_number(random.Random(seed)))


def test_the_published_example_is_valid() -> None:
    assert nhs_number_is_valid("9434765919")
    assert nhs_number_problem("9434765919") is None
    assert nhs_check_digit("943476591") == 9


@pytest.mark.parametrize(("value", "reason"), [
    ("9434765918", "check digit does not match"),
    ("943 476 5919", "must be 10 digits"),
    ("943476591", "must be 10 digits"),
    ("94347659190", "must be 10 digits"),
    ("", "must be 10 digits"),
    ("943476591X", "must be 10 digits"),
    ("٩٤٣٤٧٦٥٩١٩", "must be 10 digits"),  # Arabic-Indic digits: isdigit() alone accepts them
    (9434765919, "must be a string of 10 digits"),
])
def test_invalid_nhs_numbers_say_why(value: object, reason: str) -> None:
    assert nhs_number_problem(value) == reason
    assert identifier_problem("nhs_number", value) == reason


def test_a_base_whose_check_digit_would_be_10_is_never_valid() -> None:
    base = next(f"{n:09d}" for n in range(100_000_000, 100_001_000) if nhs_check_digit(f"{n:09d}") is None)
    assert all(not nhs_number_is_valid(f"{base}{d}") for d in "0123456789")
    assert nhs_number_problem(f"{base}0") == "check digit would be 10, so the number cannot be issued"


@given(valid_nhs)
def test_generated_nhs_numbers_are_valid(number: str) -> None:
    assert len(number) == 10 and number.isdigit() and number[0] != "0"
    assert nhs_number_is_valid(number)


@given(seeds)
def test_test_range_prefix_is_kept(seed: int) -> None:
    number = make_nhs_number(random.Random(seed), prefix="999")
    assert number.startswith("999") and nhs_number_is_valid(number)


@given(valid_nhs, st.integers(min_value=0, max_value=9), st.integers(min_value=1, max_value=9))
def test_changing_any_one_digit_makes_it_invalid(number: str, position: int, step: int) -> None:
    changed = str((int(number[position]) + step) % 10)
    mutated = number[:position] + changed + number[position + 1:]
    assert not nhs_number_is_valid(mutated)


@given(valid_nhs, st.integers(min_value=0, max_value=8))
def test_swapping_two_different_neighbours_makes_it_invalid(number: str, position: int) -> None:
    a, b = number[position], number[position + 1]
    if a == b:  # nothing changes; the property is about a real transposition
        return
    swapped = number[:position] + b + a + number[position + 2:]
    assert not nhs_number_is_valid(swapped)


@given(st.text(max_size=20))
def test_reasons_never_echo_the_value(value: str) -> None:
    for scheme in IDENTIFIER_SCHEMES:
        reason = identifier_problem(scheme, value)
        if reason is not None and len(value.strip()) >= 3:
            assert value not in reason


@given(seeds)
def test_generated_prison_probation_and_police_ids_are_valid(seed: int) -> None:
    rng = random.Random(seed)
    assert noms_number_problem(make_noms_number(rng)) is None
    assert crn_problem(make_crn(rng)) is None
    pnc = make_pnc_id(rng)
    assert pnc_id_problem(pnc) is None
    year, rest = pnc.split("/")
    assert pnc_check_character(int(year), int(rest[:-1])) == rest[-1]


@pytest.mark.parametrize(("scheme", "value", "valid"), [
    ("noms_number", "A1234BC", True),
    ("noms_number", "a1234bc", False),
    ("noms_number", "A123BC", False),
    ("noms_number", "A1234BC1", False),
    ("crn", "X123456", True),
    ("crn", "X12345", False),
    ("crn", "123456X", False),
    ("pnc_id", "2019/0123456Q", True),
    ("pnc_id", "98/123456A", True),     # the older short form agencies still copy
    ("pnc_id", "2019/123456", False),   # no check letter
    ("pnc_id", "2019-0123456Q", False),
    ("local_id", "LEE0001234", True),
    ("local_id", "x" * 64, True),
    ("local_id", "x" * 65, False),
    ("local_id", "   ", False),
    ("local_id", "", False),
])
def test_formats(scheme: str, value: str, valid: bool) -> None:
    assert (identifier_problem(scheme, value) is None) is valid


def test_unknown_scheme_and_non_strings_are_refused() -> None:
    assert identifier_problem("passport", "123") == "unknown identifier scheme"
    assert local_id_problem(None) == "must not be empty"
    assert noms_number_problem(1234) is not None
    assert set(IDENTIFIER_SCHEMES) <= {"nhs_number", "noms_number", "crn", "pnc_id", "local_id"}
    with pytest.raises(ValueError):
        make_nhs_number(random.Random(1), prefix="12a")
