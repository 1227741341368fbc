"""Simulated time: parsing "1us" and "1GHz", formatting "32.2803 ms", and bad input."""

from __future__ import annotations

import contextlib
from fractions import Fraction

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from nnsim.errors import NnsimError, UnitError
from nnsim.units import MAX_TIME, format_time, parse_frequency, parse_time, period_of

SCALES = {"ps": 1, "ns": 10**3, "us": 10**6, "ms": 10**9, "s": 10**12}


@pytest.mark.parametrize(
    ("text", "ps"),
    [
        ("1us", 10**6),
        ("1 us", 10**6),
        ("2.5 ns", 2500),
        ("1µs", 10**6),
        ("7ps", 7),
        ("0", 0),
        ("1e3ns", 10**6),
        ("0.5 s", 5 * 10**11),
        (42, 42),
    ],
)
def test_parse_time_reads_units_into_whole_picoseconds(text: str | int, ps: int) -> None:
    assert parse_time(text) == ps


def test_a_frequency_where_a_time_is_wanted_means_its_period() -> None:
    assert parse_time("1GHz") == 1000
    assert parse_time("2.5GHz") == 400


def test_parse_frequency_is_exact_hertz() -> None:
    assert parse_frequency("2.5GHz") == Fraction(2_500_000_000)
    assert parse_frequency("1 kHz") == 1000


def test_period_of_gives_whole_picoseconds() -> None:
    assert period_of("2.5GHz") == 400
    assert period_of("1GHz") == 1000
    assert period_of("1MHz") == 10**6


def test_format_time_uses_the_largest_unit_that_keeps_the_value_at_least_one() -> None:
    assert format_time(32280300000) == "32.2803 ms"
    assert format_time(10**6) == "1 us"
    assert format_time(999) == "999 ps"
    assert format_time(0) == "0 ps"


@pytest.mark.parametrize(
    "text",
    ["", "us", "fast", "1 parsec", "-1us", "1.5ps", "3GHzz", "0GHz", "3GHz", "1e9999999ps"],
)
def test_bad_time_strings_raise_unit_error(text: str) -> None:
    with pytest.raises(UnitError):
        parse_time(text)


@pytest.mark.parametrize("text", ["7", " 5 ", "1e3", "0.5", "99"])
def test_a_bare_number_is_not_a_time_and_the_error_lists_the_units(text: str) -> None:
    with pytest.raises(UnitError) as caught:
        parse_time(text)
    message = str(caught.value)
    assert f"time {text.strip()!r} has no unit; write e.g. '{text.strip()}us'" in message
    assert "units: ps, ns, us, ms, s" in message


def test_unit_error_is_a_value_error_and_an_nnsim_error() -> None:
    with pytest.raises(UnitError) as caught:
        parse_time("soon")
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, NnsimError)
    assert "'soon'" in str(caught.value)


@pytest.mark.parametrize("value", [-1, True, None, "1.5"])
def test_parse_time_refuses_negative_ints_bools_and_fractions_of_a_picosecond(value) -> None:
    with pytest.raises(UnitError):
        parse_time(value)


@pytest.mark.parametrize("text", ["1us", "0Hz", "-1GHz", "fast"])
def test_bad_frequency_strings_raise_unit_error(text: str) -> None:
    with pytest.raises(UnitError):
        period_of(text)


@given(mantissa=st.integers(min_value=0, max_value=999_999), power=st.integers(0, 14))
def test_formatted_time_parses_back_to_the_same_ticks(mantissa: int, power: int) -> None:
    # At most 6 significant digits (what format_time prints) from ps up to the last time.
    ps = mantissa * 10**power
    assume(ps <= MAX_TIME)
    assert parse_time(format_time(ps)) == ps


@pytest.mark.parametrize(
    "value", [MAX_TIME + 1, "99999999999999999999999s", "9223372036854775808ps", "1e7 s"]
)
def test_times_past_what_the_kernel_holds_are_refused_in_one_line(value) -> None:
    with pytest.raises(UnitError, match=r"too far: simulated time ends at 9\.22337e\+06 s"):
        parse_time(value)
    assert parse_time(MAX_TIME) == MAX_TIME == parse_time(f"{MAX_TIME}ps")


@given(unit=st.sampled_from(sorted(SCALES)), count=st.integers(min_value=0, max_value=10**9))
def test_whole_numbers_of_each_unit_parse_exactly(unit: str, count: int) -> None:
    assume(count * SCALES[unit] <= MAX_TIME)
    assert parse_time(f"{count}{unit}") == count * SCALES[unit]
    assert parse_time(f"{count} {unit}") == count * SCALES[unit]


QUANTITY_LIKE = st.from_regex(
    r"\s?[0-9]{0,50}\.?[0-9]{1,50}([eE][-+]?[0-9]{1,9})?\s?[a-zA-Zµ]{0,4}", fullmatch=True
)


@settings(max_examples=300)
@given(text=st.one_of(st.text(max_size=30), QUANTITY_LIKE))
@example(text="1e9999999ps")
@example(text="9" * 5000)
def test_any_text_either_parses_or_raises_unit_error(text: str) -> None:
    for parse in (parse_time, parse_frequency, period_of):
        with contextlib.suppress(UnitError):
            parse(text)


def test_millihertz_is_refused_rather_than_read_as_megahertz() -> None:
    with pytest.raises(UnitError, match="did you mean MHz"):
        parse_frequency("1mHz")
    assert parse_frequency("1MHz") == 10**6
