"""Per-client limits on requests that carry a bearer secret (a tracking code), so that codes cannot be
guessed at speed. Used by tracking's lookups and intake's replies and ratings.

Each client has two budgets: requests, and misses (a code mistyped, malformed or unknown). A request
takes one of each *before* anything else, before any database read or wait, and gives the miss back
when its code turns out to be found: 200 guesses sent at once get at most the miss budget of answers,
and the rest 429 with `Retry-After`.

Budgets are token buckets in this replica's memory (a client reaching several replicas gets each one's):
`"10/minute"` holds 10 and refills one every 6 seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from limits import parse

from shared.http import ApiError

# Past this many clients in memory, the ones whose budget is full again are forgotten.
MAX_CLIENTS = 10_000


class RateLimited(ApiError):
    def __init__(self, seconds: int) -> None:
        super().__init__(
            "error.rate_limited", status=429, seconds=seconds, headers={"Retry-After": str(seconds)}
        )


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@dataclass
class _Bucket:
    tokens: float
    at: float


class Budget:
    """So many per period and per client, e.g. `"10/minute"` (the `limits` notation)."""

    def __init__(self, limit: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        item = parse(limit)
        self.capacity = float(item.amount)
        self.per_second = item.amount / item.get_expiry()
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, client: str) -> None:
        """Take one, or raise `RateLimited` saying when one will be back."""
        bucket = self._refilled(client)
        if bucket.tokens < 1:
            raise RateLimited(max(1, math.ceil((1 - bucket.tokens) / self.per_second)))
        bucket.tokens -= 1

    def give_back(self, client: str) -> None:
        bucket = self._refilled(client)
        bucket.tokens = min(self.capacity, bucket.tokens + 1)

    def _refilled(self, client: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= MAX_CLIENTS:
                self._forget_full(now)
            bucket = self._buckets[client] = _Bucket(tokens=self.capacity, at=now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.per_second)
        bucket.at = now
        return bucket

    def _forget_full(self, now: float) -> None:
        for client, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.at) * self.per_second >= self.capacity:
                del self._buckets[client]


class Attempt:
    """One request's claim on its client's miss budget: `found()` gives the miss back."""

    def __init__(self, misses: Budget, client: str) -> None:
        self._misses, self._client, self._settled = misses, client, False

    def found(self) -> None:
        """The code named a case: this was no guess."""
        if not self._settled:
            self._settled = True
            self._misses.give_back(self._client)


class Limiter:
    """A client's budgets of requests (optional) and of misses."""

    def __init__(
        self, *, misses: str, requests: str | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.misses = Budget(misses, clock=clock)
        self.requests = Budget(requests, clock=clock) if requests else None

    def attempt(self, client: str) -> Attempt:
        """Take a request and a miss from `client`'s budgets, or raise `RateLimited` (429)."""
        if self.requests is not None:
            self.requests.take(client)
        self.misses.take(client)
        return Attempt(self.misses, client)
