"""workflow's rules: who may do what to a case, and which events that records.

Pure functions over a `CaseState`; they raise a `WorkflowError` (with its HTTP status) before anything
changes, or return the events to append. The `check_*` guards run first, as in every command here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from uuid import UUID

from shared.auth import Agent
from shared.events.intake import CaseSubmitted
from shared.events.workflow import (
    CaseAssigned,
    CaseOpened,
    DeadlineApproaching,
    DeadlinePassed,
    StepChanged,
    WorkflowEvent,
)
from shared.procedures import Procedure, Role, Transition, Turn

TAKE, ASSIGN = "take", "assign"


class WorkflowError(Exception):
    status = 422

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key, self.params = key, params


class Conflict(WorkflowError):
    status = 409


class Forbidden(WorkflowError):
    status = 403


@dataclass(frozen=True)
class CaseState:
    case_id: UUID
    procedure: Procedure
    step: str
    version: int
    assignee: str | None
    legal_deadline: date | None
    clock_paused_since: date | None
    deadline_state: str
    outcome: str | None

    @property
    def service(self) -> str:
        return self.procedure.service

    @property
    def final(self) -> bool:
        return self.outcome is not None


def open_case(
    submitted: CaseSubmitted, procedure: Procedure, *, now: datetime
) -> tuple[CaseState, CaseOpened]:
    state = CaseState(
        case_id=submitted.case_id,
        procedure=procedure,
        step=procedure.first_step.code,
        version=1,
        assignee=None,
        legal_deadline=submitted.legal_deadline,
        clock_paused_since=None,
        deadline_state="none",
        outcome=None,
    )
    event = CaseOpened(
        case_id=state.case_id,
        version=1,
        procedure=procedure.code,
        procedure_version=procedure.version,
        service=procedure.service,
        step=state.step,
        legal_deadline=state.legal_deadline,
        opened_at=now,
    )
    return state, event


def _acts_as(agent: Agent) -> set[Role]:
    """An admin can do what a supervisor can, and a supervisor what an agent can."""
    ladder = [Role.AGENT, Role.SUPERVISOR, Role.ADMIN]
    return set(ladder[: ladder.index(agent.role) + 1])


def _transitions(state: CaseState, roles: set[Role]) -> list[Transition]:
    return [t for t in state.procedure.transitions if t.from_ == state.step and roles & set(t.roles)]


def allowed_actions(state: CaseState, agent: Agent) -> list[str]:
    if state.final or not agent.can_see(state.service):
        return []
    actions = [] if state.assignee == agent.id else [TAKE]
    if agent.role in (Role.SUPERVISOR, Role.ADMIN):
        actions.append(ASSIGN)
    return actions + [t.action for t in _transitions(state, _acts_as(agent))]


def check_visible(state: CaseState, agent: Agent) -> None:
    if not agent.can_see(state.service):
        raise Forbidden("workflow.forbidden_service", service=state.service)


def check_version(state: CaseState, expected: int) -> None:
    if expected != state.version:
        raise Conflict("workflow.version_conflict", expected=expected, current=state.version)


def check_open(state: CaseState) -> None:
    if state.final:
        raise WorkflowError("workflow.case_closed", outcome=state.outcome)


def take(state: CaseState, agent: Agent, *, now: datetime) -> tuple[CaseState, list[WorkflowEvent]]:
    check_visible(state, agent)
    check_open(state)
    return _assign(state, assignee=agent.id, by=agent.id, now=now)


def assign(
    state: CaseState, agent: Agent, *, assignee: str | None, now: datetime
) -> tuple[CaseState, list[WorkflowEvent]]:
    check_visible(state, agent)
    check_open(state)
    if agent.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise Forbidden("workflow.forbidden_role", action=ASSIGN, allowed="supervisor, admin")
    if not assignee:
        raise WorkflowError("workflow.assignee_required")
    return _assign(state, assignee=assignee, by=agent.id, now=now)


def _assign(
    state: CaseState, *, assignee: str, by: str, now: datetime
) -> tuple[CaseState, list[WorkflowEvent]]:
    version = state.version + 1
    event = CaseAssigned(case_id=state.case_id, version=version, assignee=assignee, by=by, at=now)
    return replace(state, version=version, assignee=assignee), [event]


def _clock_after(state: CaseState, target_turn: Turn, today: date) -> tuple[date | None, date | None]:
    """The legal deadline and pause start once the case is in a step whose turn is `target_turn`."""
    deadline, paused_since = state.legal_deadline, state.clock_paused_since
    stops = (
        state.procedure.legal_deadline is not None
        and state.procedure.legal_deadline.clock_stops_when_waiting_for_citizen
    )
    if deadline is None or not stops:
        return deadline, None
    if paused_since is not None and target_turn != Turn.CITIZEN:
        return deadline + timedelta(days=(today - paused_since).days), None
    if paused_since is None and target_turn == Turn.CITIZEN:
        return deadline, today
    return deadline, paused_since


def move(
    state: CaseState,
    *,
    action: str,
    actor: Agent | None,
    now: datetime,
    today: date,
    reason: str | None = None,
) -> tuple[CaseState, list[WorkflowEvent]]:
    """Take the transition `action` from the current step; `actor` None is the citizen answering."""
    if actor is not None:
        check_visible(state, actor)
    check_open(state)
    roles = _acts_as(actor) if actor is not None else {Role.CITIZEN}
    candidates = [t for t in state.procedure.transitions if t.from_ == state.step and t.action == action]
    if not candidates:
        allowed = allowed_actions(state, actor) if actor is not None else []
        raise WorkflowError(
            "workflow.action_not_allowed", action=action, step=state.step, allowed=", ".join(allowed) or "-"
        )
    transition = next((t for t in candidates if roles & set(t.roles)), None)
    if transition is None:
        raise Forbidden(
            "workflow.forbidden_role",
            action=action,
            allowed=", ".join(sorted({r.value for t in candidates for r in t.roles})),
        )
    target = state.procedure.step(transition.to)
    if target.outcome == "rejected" and not (reason and reason.strip()):
        raise WorkflowError("workflow.reason_required", action=action)
    deadline, paused_since = _clock_after(state, target.turn, today)
    version = state.version + 1
    event = StepChanged(
        case_id=state.case_id,
        version=version,
        action=action,
        from_step=state.step,
        to_step=target.code,
        actor="agent" if actor is not None else "citizen",
        by=actor.id if actor is not None else None,
        at=now,
        clock_paused=paused_since is not None,
        legal_deadline=deadline,
        outcome=target.outcome.value if target.outcome else None,
    )
    new_state = replace(
        state,
        step=target.code,
        version=version,
        legal_deadline=deadline,
        clock_paused_since=paused_since,
        outcome=event.outcome,
    )
    return new_state, [event]


def citizen_transition(state: CaseState) -> str | None:
    """The action a citizen's reply takes from the current step, if the case is waiting for one."""
    found = _transitions(state, {Role.CITIZEN})
    return found[0].action if found and not state.final else None


def deadline_events(
    state: CaseState, *, now: datetime, today: date, warn_days: int
) -> tuple[CaseState, list[WorkflowEvent]]:
    """What the passing of time records: a warning a few days before, the deadline passing, a tacit decision."""
    if state.final or state.legal_deadline is None or state.clock_paused_since is not None:
        return state, []
    days_left = (state.legal_deadline - today).days
    if days_left < 0 and state.deadline_state != "passed":
        return _deadline_passed(state, now=now, today=today)
    if 0 <= days_left <= warn_days and state.deadline_state == "none":
        version = state.version + 1
        warning = DeadlineApproaching(
            case_id=state.case_id,
            version=version,
            legal_deadline=state.legal_deadline,
            days_left=days_left,
            at=now,
        )
        return replace(state, version=version, deadline_state="warned"), [warning]
    return state, []


def _deadline_passed(
    state: CaseState, *, now: datetime, today: date
) -> tuple[CaseState, list[WorkflowEvent]]:
    assert state.legal_deadline is not None
    version = state.version + 1
    passed = DeadlinePassed(
        case_id=state.case_id, version=version, legal_deadline=state.legal_deadline, step=state.step, at=now
    )
    state = replace(state, version=version, deadline_state="passed")
    rule = state.procedure.legal_deadline
    if rule is None or rule.tacit_step is None:
        return state, [passed]
    target = state.procedure.step(rule.tacit_step)
    version += 1
    decision = StepChanged(
        case_id=state.case_id,
        version=version,
        action=f"tacit-{rule.silence.value}",
        from_step=state.step,
        to_step=target.code,
        actor="system",
        by=None,
        at=now,
        clock_paused=False,
        legal_deadline=state.legal_deadline,
        outcome=target.outcome.value if target.outcome else None,
        tacit=True,
    )
    return replace(state, version=version, step=target.code, outcome=decision.outcome), [passed, decision]
