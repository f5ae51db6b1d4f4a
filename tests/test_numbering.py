"""Whatever shape a provider sends a number in, the call sees one canonical number."""

from __future__ import annotations

import pytest

from switchboard.numbering import ANONYMOUS, UNKNOWN, NumberingPlan, normalize

MOSCOW = NumberingPlan(country_code="7", city_code="495", national_prefix="8")

OFFICE_NUMBER = {
    "international with spaces and brackets": "+7 (495) 123-45-67",
    "national with the trunk prefix 8 and spaces": "8 495 123 45 67",
    "national with the trunk prefix 8, digits only": "84951234567",
    "ten digits without any prefix": "4951234567",
    "a seven-digit local number gets the city code": "1234567",
    "a SIP URI with host and port": "sip:74951234567@10.0.0.1:5060",
    "a SIP header in angle brackets with a tag": "<sip:+74951234567@host>;tag=x",
    "a tel URI": "tel:+74951234567",
    "a display name and a SIP URI with the national prefix": '"Ivan" <sip:84951234567@10.0.0.1>',
    "a SIPS URI": "sips:74951234567@host",
    "a SIP URI with user parameters": "sip:+74951234567;user=phone@host",
    "a tel URI with dashes": "tel:+7-495-123-45-67",
    "surrounding spaces": "  +7 495 123 45 67 ",
}


@pytest.mark.parametrize("raw", list(OFFICE_NUMBER.values()), ids=list(OFFICE_NUMBER))
def test_every_provider_format_of_the_office_number_becomes_full_international_digits(
    raw: str,
) -> None:
    assert normalize(raw, MOSCOW) == "74951234567"


@pytest.mark.parametrize(
    "raw", ["89161234567", "+79161234567", "8 (916) 123-45-67", "79161234567", "9161234567"]
)
def test_a_mobile_number_in_any_format_becomes_79161234567(raw: str) -> None:
    assert normalize(raw, MOSCOW) == "79161234567"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("101", "101"), ("500", "500"), ("112", "112"), ("sip:101@pbx.local", "101")],
)
def test_an_extension_or_short_number_stays_as_it_is(raw: str, expected: str) -> None:
    assert normalize(raw, MOSCOW) == expected


WITHHELD = {
    "lower case": "anonymous",
    "capitalised": "Anonymous",
    "a quoted Restricted": '"Restricted"',
    "a SIP URI of the anonymous user": "sip:anonymous@anonymous.invalid",
    "a display name and the anonymous URI": '"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1',
    "Asterisk's presentation words": "Presentation Restricted",
    "private": "Private",
    "withheld": "withheld",
}


@pytest.mark.parametrize("raw", list(WITHHELD.values()), ids=list(WITHHELD))
def test_a_withheld_caller_id_becomes_anonymous(raw: str) -> None:
    assert normalize(raw, MOSCOW) == ANONYMOUS == "anonymous"


EMPTY = {
    "an empty string": "",
    "spaces only": "   ",
    "no caller id at all": None,
    "the word unknown": "unknown",
    "Unavailable": "Unavailable",
    "a quoted Unavailable": '"Unavailable"',
    "a SIP URI with an empty user": '"" <sip:@host>',
}


@pytest.mark.parametrize("raw", list(EMPTY.values()), ids=list(EMPTY))
def test_an_empty_or_unavailable_caller_id_becomes_unknown(raw: str | None) -> None:
    assert normalize(raw, MOSCOW) == UNKNOWN == "unknown"


def test_a_sip_user_name_that_merely_contains_a_withheld_word_is_kept() -> None:
    """A SIP account called "privatebank" is somebody, not a withheld number."""
    assert normalize("sip:privatebank@10.0.0.1", MOSCOW) == "privatebank"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("81044207946000", "44207946000"),  # 810: the Russian international prefix
        ("810 44 20 7946 0000", "442079460000"),
        ("+44 20 7946 0000", "442079460000"),
        ("+1 (212) 555-0100", "12125550100"),
    ],
)
def test_an_international_number_keeps_its_own_country_code(raw: str, expected: str) -> None:
    assert normalize(raw, MOSCOW) == expected


def test_a_toll_free_number_with_the_trunk_prefix_gets_the_country_code() -> None:
    assert normalize("8-800-555-35-35", MOSCOW) == "78005553535"


def test_without_a_numbering_plan_only_visual_separators_are_removed() -> None:
    plan = NumberingPlan()
    assert normalize("+7 (495) 123-45-67", plan) == "74951234567"
    assert normalize("123-45-67", plan) == "1234567"
