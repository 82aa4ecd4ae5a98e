"""The per-client budgets of requests carrying a tracking code: taken first, given back when found."""

from __future__ import annotations

import pytest

from shared import ratelimit
from shared.ratelimit import Budget, Limiter, RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_budget_is_spent_then_says_when_to_come_back() -> None:
    clock = Clock()
    budget = Budget("3/minute", clock=clock)
    for _ in range(3):
        budget.take("a")
    with pytest.raises(RateLimited) as refused:
        budget.take("a")
    assert refused.value.status == 429
    assert refused.value.headers == {"Retry-After": "20"}
    budget.take("b")  # another client has its own


def test_a_budget_refills_with_time() -> None:
    clock = Clock()
    budget = Budget("3/minute", clock=clock)
    for _ in range(3):
        budget.take("a")
    clock.now += 20
    budget.take("a")
    with pytest.raises(RateLimited):
        budget.take("a")


def test_a_miss_given_back_can_be_spent_again_but_never_beyond_the_budget() -> None:
    limiter = Limiter(misses="2/hour", clock=Clock())
    for _ in range(5):
        limiter.attempt("a").found()
    first, second = limiter.attempt("a"), limiter.attempt("a")
    with pytest.raises(RateLimited):
        limiter.attempt("a")
    first.found()
    first.found()  # once only
    limiter.attempt("a")
    with pytest.raises(RateLimited):
        limiter.attempt("a")
    assert second


def test_requests_have_their_own_budget() -> None:
    limiter = Limiter(misses="10/minute", requests="2/minute", clock=Clock())
    limiter.attempt("a").found()
    limiter.attempt("a").found()
    with pytest.raises(RateLimited):
        limiter.attempt("a")


def test_clients_whose_budget_is_full_again_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_CLIENTS", 3)
    clock = Clock()
    budget = Budget("1/minute", clock=clock)
    for client in "abc":
        budget.take(client)
    clock.now += 60
    budget.take("d")
    assert len(budget._buckets) == 1
