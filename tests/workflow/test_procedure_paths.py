"""Every procedure definition walked through its allowed paths; forbidden transitions rejected."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

import pytest

from services.workflow import domain
from shared.auth import Agent
from shared.events.intake import CaseSubmitted
from shared.events.workflow import WorkflowEvent
from shared.procedures import CITY_TIMEZONE, Catalogue, Procedure, Role, load_catalogue
from shared.settings import DEFAULT_PROCEDURES_DIR

CATALOGUE: Catalogue = load_catalogue(DEFAULT_PROCEDURES_DIR)
TODAY = date(2026, 3, 2)


def at(day: date) -> datetime:
    """9 a.m. in the city on `day`: the domain counts legal days in the city's calendar."""
    return datetime.combine(day, time(9), CITY_TIMEZONE)


NOW = at(TODAY)


def _submitted(procedure: Procedure) -> CaseSubmitted:
    return CaseSubmitted(
        case_id=uuid.uuid4(),
        tracking_code_digest="0" * 64,
        procedure=procedure.code,
        procedure_version=procedure.version,
        service=procedure.service,
        channel="web",
        language="fr",
        submitted_at=NOW,
        legal_deadline=procedure.legal_deadline.due(TODAY) if procedure.legal_deadline else None,
        first_step=procedure.first_step.code,
        facts={},
    )


def _opened(procedure: Procedure) -> domain.CaseState:
    return domain.open_case(_submitted(procedure), procedure, now=NOW)[0]


def _supervisor(procedure: Procedure) -> Agent:
    return Agent(id="sup-1", role=Role.SUPERVISOR, services=frozenset({procedure.service}))


def _into(state: domain.CaseState, action: str) -> str:
    return next(t.to for t in state.procedure.transitions if t.from_ == state.step and t.action == action)


@pytest.mark.parametrize("procedure", CATALOGUE.all_latest(), ids=lambda p: p.code)
def test_every_step_is_reached_by_some_allowed_path(procedure: Procedure) -> None:
    supervisor = _supervisor(procedure)
    reached, todo = {procedure.first_step.code}, deque([_opened(procedure)])
    while todo:
        state = todo.popleft()
        for action in domain.allowed_actions(state, supervisor):
            if action in (domain.TAKE, domain.ASSIGN):
                continue
            original = _opened(procedure) if _into(state, action) == domain.DUPLICATE_STEP else None
            new, events = domain.move(
                state, action=action, actor=supervisor, now=NOW, reason="motif", duplicate_of=original
            )
            assert events[0].to_step == new.step and new.version == state.version + 1
            if new.step not in reached:
                reached.add(new.step)
                todo.append(new)
    tacit = procedure.legal_deadline.tacit_step if procedure.legal_deadline else None
    assert reached | {tacit} - {None} == {s.code for s in procedure.steps}


@pytest.mark.parametrize("procedure", CATALOGUE.all_latest(), ids=lambda p: p.code)
def test_actions_not_allowed_from_a_step_are_refused_naming_the_allowed_ones(procedure: Procedure) -> None:
    supervisor, state = _supervisor(procedure), _opened(procedure)
    allowed = domain.allowed_actions(state, supervisor)
    for transition in procedure.transitions:
        if transition.from_ == state.step or transition.action in allowed:  # the same action from here
            continue
        with pytest.raises(domain.WorkflowError) as refused:
            domain.move(state, action=transition.action, actor=supervisor, now=NOW, reason="x")
        assert type(refused.value) is domain.WorkflowError  # the app answers 422
        assert refused.value.params["allowed"] == ", ".join(allowed)


def test_a_rejection_needs_a_reason_and_a_supervisor() -> None:
    permit = CATALOGUE.latest("permis-construire")
    assert permit is not None
    state = _opened(permit)
    agent = Agent(id="a-1", role=Role.AGENT, services=frozenset({"urbanisme"}))
    for action in ("start-check", "start-review"):
        state = domain.move(state, action=action, actor=agent, now=NOW)[0]
    with pytest.raises(domain.Forbidden):
        domain.move(state, action="reject", actor=agent, now=NOW, reason="PLU")
    with pytest.raises(domain.WorkflowError, match="reason_required"):
        domain.move(state, action="reject", actor=_supervisor(permit), now=NOW, reason=" ")
    decided = domain.move(state, action="reject", actor=_supervisor(permit), now=NOW, reason="PLU")[0]
    assert decided.outcome == "rejected" and domain.allowed_actions(decided, _supervisor(permit)) == []


def test_waiting_for_the_citizen_stops_the_legal_clock_and_the_reply_restarts_it() -> None:
    permit = CATALOGUE.latest("permis-construire")
    assert permit is not None
    agent = Agent(id="a-1", role=Role.AGENT, services=frozenset({"urbanisme"}))
    state = domain.move(_opened(permit), action="start-check", actor=agent, now=NOW)[0]
    deadline = state.legal_deadline
    assert deadline == date(2026, 5, 2)
    waiting, events = domain.move(state, action="request-documents", actor=agent, now=at(date(2026, 3, 10)))
    assert events[0].clock_paused and waiting.clock_paused_since == date(2026, 3, 10)
    assert domain.citizen_transition(waiting) == "receive-documents"
    assert domain.deadline_events(waiting, now=at(date(2026, 6, 1)), warn_days=5) == (waiting, [])
    resumed, events = domain.move(waiting, action="receive-documents", actor=None, now=at(date(2026, 3, 24)))
    assert events[0].actor == "citizen" and not events[0].clock_paused
    assert resumed.legal_deadline == date(2026, 5, 16)  # 14 days on hold added


def test_silence_means_acceptance_once_the_deadline_has_passed() -> None:
    permit = CATALOGUE.latest("permis-construire")
    assert permit is not None
    state = _opened(permit)
    assert domain.deadline_events(state, now=at(date(2026, 4, 20)), warn_days=5) == (state, [])
    warned, events = domain.deadline_events(state, now=at(date(2026, 4, 28)), warn_days=5)
    assert [e.type for e in events] == ["fr.suivi.case.deadline-approaching.v1"] and events[0].days_left == 4
    assert domain.deadline_events(warned, now=at(date(2026, 5, 2)), warn_days=5) == (warned, [])
    decided, events = domain.deadline_events(warned, now=at(date(2026, 5, 3)), warn_days=5)
    assert [e.type for e in events] == ["fr.suivi.case.deadline-passed.v1", "fr.suivi.case.step-changed.v1"]
    assert decided.step == "tacitly-accepted" and decided.outcome == "accepted" and events[1].tacit
    assert domain.deadline_events(decided, now=at(date(2026, 6, 3)), warn_days=5) == (decided, [])


def test_a_case_is_the_fold_of_the_events_its_commands_return() -> None:
    """Each command's new state is what folding all the case's events from nothing gives."""
    permit = CATALOGUE.latest("permis-construire")
    assert permit is not None
    submitted = _submitted(permit)
    state, opened = domain.open_case(submitted, permit, now=NOW + timedelta(minutes=5))
    events: list[WorkflowEvent] = [opened]
    agent = Agent(id="a-1", role=Role.SUPERVISOR, services=frozenset({"urbanisme"}))
    commands: list[Callable[[domain.CaseState], tuple[domain.CaseState, list[WorkflowEvent]]]] = [
        lambda s: domain.take(s, agent, now=NOW),
        lambda s: domain.move(s, action="start-check", actor=agent, now=NOW),
        lambda s: domain.move(s, action="request-documents", actor=agent, now=at(date(2026, 3, 10))),
        lambda s: domain.move(s, action="receive-documents", actor=None, now=at(date(2026, 3, 24))),
        lambda s: domain.deadline_events(s, now=at(date(2026, 5, 14)), warn_days=5),
        lambda s: domain.deadline_events(s, now=at(date(2026, 5, 17)), warn_days=5),
    ]
    for command in commands:
        state, new = command(state)
        events += new
        assert domain.fold(domain.unopened(submitted.case_id, permit), events) == state
    assert state.step == "tacitly-accepted" and state.legal_deadline == date(2026, 5, 16)
    assert (state.deadline_state, state.assignee, state.submitted_at) == ("passed", "a-1", NOW)
    with pytest.raises(domain.BrokenHistory):
        domain.fold(domain.unopened(submitted.case_id, permit), events[1:])
