"""stats' rules: percentiles from sketch bins stay within 1 % of the exact ones, months and periods."""

from __future__ import annotations

import bisect
from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.stats import domain
from shared.procedures import CITY_TIMEZONE


def exact_quantile(values: list[float], q: float) -> float:
    """Lower nearest rank at 0-based rank q·(n−1): the definition the method states."""
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=1, max_value=5 * 365 * 86_400, allow_nan=False), min_size=1, max_size=400),
    st.sampled_from([0.5, 0.9]),
)
def test_a_percentile_read_from_bins_is_within_one_percent_of_the_exact_one(
    values: list[float], q: float
) -> None:
    bins: dict[int, int] = {}
    for value in values:
        bins[domain.bin_of(value)] = bins.get(domain.bin_of(value), 0) + 1
    estimate = domain.quantile(bins, q)
    assert estimate is not None
    assert abs(estimate - exact_quantile(values, q)) <= 0.01 * exact_quantile(values, q)


def test_months_merge_into_quarters_and_years_from_the_same_bins() -> None:
    march, april = {domain.bin_of(86_400): 3}, {domain.bin_of(86_400): 1, domain.bin_of(10 * 86_400): 4}
    quarter = domain.distribution(
        domain.merge([march, april]), total_seconds=3 * 86_400 + 86_400 + 40 * 86_400
    )
    assert quarter.n == 8
    assert domain.in_days(quarter.mean) == 5.5
    assert quarter.p50 == pytest.approx(86_400, rel=0.01) and quarter.p90 == pytest.approx(864_000, rel=0.01)
    assert [domain.period_of(date(2026, m, 1), "quarter") for m in (1, 3, 4, 12)] == [
        "2026-Q1",
        "2026-Q1",
        "2026-Q2",
        "2026-Q4",
    ]
    assert domain.period_of(date(2026, 4, 1), "year") == "2026"


def test_a_case_open_across_month_ends_counts_in_each_of_those_months_backlog() -> None:
    submitted = datetime(2026, 1, 20, 10, tzinfo=CITY_TIMEZONE)
    decided = datetime(2026, 4, 1, 0, 0, tzinfo=CITY_TIMEZONE)  # the very end of March, city time
    assert domain.month_ends_crossed(submitted, decided) == [
        date(2026, 1, 1),
        date(2026, 2, 1),
        date(2026, 3, 1),
    ]
    assert domain.month_ends_crossed(submitted, datetime(2026, 1, 31, 23, tzinfo=CITY_TIMEZONE)) == []
    # A month is the city's: 23:30 UTC on 31 January is already February in Paris.
    assert domain.month_of(datetime.fromisoformat("2026-01-31T23:30:00+00:00")) == date(2026, 2, 1)


def test_small_figures_are_suppressed_but_zero_is_not() -> None:
    assert [domain.suppressed(n, 5) for n in (0, 1, 4, 5)] == [False, True, True, False]
    assert domain.decision_of("accepted", tacit=True) == domain.Decision.TACIT_ACCEPTANCE
    assert not domain.decision_of("closed", tacit=False).is_decision


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.integers(min_value=0, max_value=10**17),
        st.sampled_from(domain.bin_floors_us()).flatmap(lambda f: st.integers(f - 2, f + 2)),
    )
)
def test_postgresql_bins_an_age_in_microseconds_as_bin_of_does(microseconds: int) -> None:
    """`width_bucket(age, floors)` is `bisect_right(floors, age)`: the bin `bin_of` gives its seconds."""
    floors = domain.bin_floors_us()
    assert bisect.bisect_right(floors, microseconds) == domain.bin_of(microseconds / 1_000_000)
