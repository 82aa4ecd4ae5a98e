"""The time workflow decides by. Tests move a `ManualClock`; production reads the system clock."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Protocol

from shared.procedures import CITY_TIMEZONE


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(CITY_TIMEZONE)


class ManualClock:
    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)


def city_today(clock: Clock) -> date:
    return clock.now().astimezone(CITY_TIMEZONE).date()
