"""The load a fault lands in: citizens submitting cases to intake, and agents moving them through their
procedure with workflow, at once, for as long as the test runs.

Every request carries an `Idempotency-Key` (an action, its expected version too), and a request that got
no answer (refused, cut, timed out) or a 503 is sent again, the same, until it is answered: so each
submission and each action is acknowledged exactly once in the ledger, and the invariant can be exact.
Any other answer (a 500, a 409, a 422...) is noted as unexpected, and the invariant fails on it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.builders import make_case

# What each case is taken through, by the case's number: from nothing (it stays received) to decided.
ACTIONS = ("take", "start-check", "start-review", "accept")
STEPS = {
    "take": "received",
    "start-check": "completeness-check",
    "start-review": "review",
    "accept": "accepted",
}
DISTRICTS = ("centre", "nord", "sud", "est", "ouest")
# Answers the load generator takes for "not now": asked again, the same.
UNAVAILABLE = 503
# 503s whose cause shows the service never reached PostgreSQL: the request cannot have been done. Any other
# (a connection cut in the middle of the transaction, perhaps of its COMMIT) is as ambiguous as no answer.
NOT_REACHED = ("ConnectionRefusedError", "CannotConnectNowError", "TooManyConnectionsError")
# How long one request may go on being retried before the generator gives up on it (a failure).
PATIENCE_SECONDS = 90


@dataclass(frozen=True)
class Acted:
    """An action workflow acknowledged: the case's version and step after it."""

    action: str
    version: int
    step: str


@dataclass
class Case:
    """A submission intake acknowledged, and the actions workflow acknowledged on it, in order."""

    number: int
    key: str
    case_id: str
    tracking_code: str
    email: str
    district: str
    actions: tuple[str, ...]
    acted: list[Acted] = field(default_factory=list)

    @property
    def version(self) -> int:
        """workflow's version of the case: 1 once opened, one more per action."""
        return self.acted[-1].version if self.acted else 1

    @property
    def step(self) -> str:
        return self.acted[-1].step if self.acted else "received"

    @property
    def decided(self) -> bool:
        return self.step == "accepted"


@dataclass
class Tally:
    """What the services answered the generator, by kind of request (`submit`, `act`)."""

    answers: Counter[str] = field(default_factory=Counter)
    # Requests sent and not answered yet, by kind.
    in_flight: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    # Keys whose retry was answered "already done" (`Idempotent-Replayed`): an earlier try had committed,
    # though it got no answer, or a 503 for a connection to PostgreSQL cut in the middle of its transaction.
    replayed_after_no_answer: int = 0
    replayed_after_cut: int = 0
    # ... when every earlier try had been refused or answered 503 (what was answered, in order).
    replayed_after_unavailable: list[str] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)

    def note(self, kind: str, outcome: str) -> None:
        self.answers[f"{kind} {outcome}"] += 1

    def count(self, kind: str, outcome: str) -> int:
        return self.answers[f"{kind} {outcome}"]


@dataclass
class Ledger:
    cases: dict[str, Case] = field(default_factory=dict)
    tally: Tally = field(default_factory=Tally)

    @property
    def actions(self) -> int:
        return sum(len(case.acted) for case in self.cases.values())

    def summary(self) -> str:
        tally = self.tally
        return (
            f"{len(self.cases)} cases and {self.actions} actions acknowledged; answers "
            f"{dict(sorted(tally.answers.items()))}; a retry found done: {tally.replayed_after_no_answer} "
            f"after no answer, {tally.replayed_after_cut} after a 503 for a connection cut mid-transaction"
        )


def _cause(answer: httpx.Response) -> str:
    """What a 503 names as its cause: the exception that made the service unavailable."""
    detail = str(answer.json().get("detail", ""))
    return detail[detail.rfind("(") + 1 : detail.rfind(")")] if "(" in detail else detail


def _not_sent(exc: httpx.HTTPError) -> bool:
    """The request never reached the service: it cannot have done anything."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


async def _sent(
    send: Callable[[], Awaitable[httpx.Response]], *, kind: str, tally: Tally
) -> httpx.Response | httpx.HTTPError:
    tally.in_flight[kind] += 1
    try:
        return await send()
    except httpx.HTTPError as exc:
        return exc
    finally:
        tally.in_flight[kind] -= 1


async def until_answered(
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    kind: str,
    tally: Tally,
    wait: Callable[[httpx.Response], bool] = lambda _: False,
) -> httpx.Response | None:
    """Send until the service answers for good: a 2xx, or another answer than 503 (unexpected, noted).
    `wait(answer)`: an answer that means "not yet" (sent again later). None: patience ran out."""
    unanswered, cut, tries = False, False, []
    deadline = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < deadline:
        answer = await _sent(send, kind=kind, tally=tally)
        if isinstance(answer, httpx.HTTPError):
            refused = _not_sent(answer)
            unanswered |= not refused
            tries.append("refused" if refused else f"no answer ({type(answer).__name__})")
            tally.note(kind, tries[-1])
            await asyncio.sleep(0.2)
            continue
        if answer.status_code == UNAVAILABLE:
            cause = _cause(answer)
            cut |= cause not in NOT_REACHED
            tries.append(f"503 {cause}")
            tally.note(kind, f"503 {cause}")
            await asyncio.sleep(0.3)
            continue
        if wait(answer):
            tally.note(kind, f"{answer.status_code} not yet")
            await asyncio.sleep(0.2)
            continue
        tally.note(kind, str(answer.status_code))
        if answer.headers.get("Idempotent-Replayed") == "true":
            if unanswered:
                tally.replayed_after_no_answer += 1
            elif cut:
                tally.replayed_after_cut += 1
            else:
                tally.replayed_after_unavailable.append(f"{kind}: {tries}")
        if not answer.is_success:
            tally.unexpected.append(f"{kind}: {answer.status_code} {answer.text[:300]}")
        return answer
    return None


class Load:
    """Citizens and agents at work until `stop()`; then the agents finish what they planned."""

    def __init__(
        self,
        *,
        intake: str,
        workflow: str,
        agents: list[dict[str, str]],
        citizens: int = 3,
        pause: float = 0.25,
    ) -> None:
        self.ledger = Ledger()
        self._intake = httpx.AsyncClient(base_url=intake, timeout=5)
        self._workflow = httpx.AsyncClient(base_url=workflow, timeout=5)
        self._agents, self._citizens, self._pause = agents, citizens, pause
        self._numbers = itertools.count(1)
        self._queue: asyncio.Queue[Case | None] = asyncio.Queue()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Load:
        self._tasks = [asyncio.create_task(self._citizen()) for _ in range(self._citizens)]
        self._agent_tasks = [asyncio.create_task(self._agent(headers)) for headers in self._agents]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """No more submissions; the agents do every action planned on the cases acknowledged so far."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        await asyncio.gather(*self._tasks)
        for _ in self._agent_tasks:
            self._queue.put_nowait(None)
        await asyncio.gather(*self._agent_tasks)
        await self._intake.aclose()
        await self._workflow.aclose()

    async def acknowledged(self, n: int, *, timeout: float = 60) -> None:
        """Until `n` more cases are acknowledged than now."""
        target, deadline = len(self.ledger.cases) + n, time.monotonic() + timeout
        while len(self.ledger.cases) < target:
            assert time.monotonic() < deadline, f"only {len(self.ledger.cases)} cases acknowledged"
            await asyncio.sleep(0.1)

    async def in_the_middle_of(self, kind: str, *, timeout: float = 3) -> None:
        """Until a request of `kind` (`submit`, `act`) is on its way: a kill then lands in the middle."""
        deadline = time.monotonic() + timeout
        while not self.ledger.tally.in_flight[kind] and time.monotonic() < deadline:
            await asyncio.sleep(0.001)

    async def _citizen(self) -> None:
        while not self._stopping.is_set():
            number = next(self._numbers)
            case = await self._submit(number)
            if case is not None:
                self.ledger.cases[case.case_id] = case
                self._queue.put_nowait(case)
            await asyncio.sleep(self._pause)

    async def _submit(self, number: int) -> Case | None:
        key, email = f"fault-case-{number}", f"citizen-{number}@example.org"
        district = DISTRICTS[number % len(DISTRICTS)]
        body = make_case(
            applicant={"email": email, "notify_by": ["email"]}, district=district, floor_area_m2=number
        )
        answer = await until_answered(
            lambda: self._intake.post("/v1/cases", json=body, headers={"Idempotency-Key": key}),
            kind="submit",
            tally=self.ledger.tally,
        )
        if answer is None:
            self.ledger.tally.gave_up.append(f"submission {key}")
            return None
        if not answer.is_success:
            return None
        made: dict[str, Any] = answer.json()
        return Case(
            number=number,
            key=key,
            case_id=made["case_id"],
            tracking_code=made["tracking_code"],
            email=email,
            district=district,
            actions=ACTIONS[: number % (len(ACTIONS) + 1)],
        )

    async def _agent(self, headers: dict[str, str]) -> None:
        while (case := await self._queue.get()) is not None:
            for action in case.actions:
                if not await self._act(case, action, headers):
                    break

    async def _act(self, case: Case, action: str, headers: dict[str, str]) -> bool:
        body = {"action": action, "expected_version": case.version, "comment": "fault test"}
        keyed = {**headers, "Idempotency-Key": f"{case.case_id}-{action}"}
        answer = await until_answered(
            lambda: self._workflow.post(f"/v1/cases/{case.case_id}/actions", json=body, headers=keyed),
            kind="act",
            tally=self.ledger.tally,
            # workflow opens the case when it sees it on the bus: until then, it does not know it.
            wait=lambda answer: answer.status_code == 404 and action == ACTIONS[0],
        )
        if answer is None:
            self.ledger.tally.gave_up.append(f"{action} on {case.case_id}")
            return False
        if not answer.is_success:
            return False
        done = answer.json()
        assert done["step"] == STEPS[action], done
        case.acted.append(Acted(action=action, version=done["version"], step=done["step"]))
        return True
