"""workflow's rules: who may do what to a case, which events that records, and what each event does.

A case is the fold of its events: `evolve(state, event)` says what one event does to it, with no I/O, and
every command computes its new state by folding its own new events through `evolve`, so that the `cases`
table (a snapshot of that fold) can always be rebuilt from `workflow.events` (`rebuild.py`).
Commands raise a domain error (no HTTP status: the app maps them) before anything changes; the `check_*`
guards run first, as in every command here.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    FixCheckDue,
    StepChanged,
    WorkflowEvent,
)
from shared.http import DomainError
from shared.procedures import CITY_TIMEZONE, Procedure, Role, Step, Transition, Turn

TAKE, ASSIGN = "take", "assign"


class WorkflowError(DomainError):
    """A workflow rule refused the command (the app answers 422 unless a subclass says otherwise)."""


class Conflict(WorkflowError):
    """The case moved on since the caller read it."""


class Forbidden(WorkflowError):
    """The agent's role or services do not allow this."""


class NotFound(WorkflowError):
    """No such case."""


class BrokenHistory(ValueError):
    """A case's events cannot be folded (out of order, or for another case): the record needs a person."""


@dataclass(frozen=True)
class CaseState:
    case_id: UUID
    procedure: Procedure
    step: str
    version: int
    assignee: str | None
    submitted_at: datetime | None
    legal_deadline: date | None
    clock_paused_since: date | None
    deadline_state: str
    outcome: str | None
    # The service the case went to (a street report's category routes it); the procedure's by default.
    service: str = ""
    # A street report's latest "done" (a final step that asks if it is fixed): when, at which version,
    # and whether its reporter was asked yet (`none`, `asked`).
    done_at: datetime | None = None
    done_version: int | None = None
    fix_check_state: str = "none"

    @property
    def final(self) -> bool:
        return self.outcome is not None


def city_day(at: datetime) -> date:
    """The day `at` falls on in the city: legal days are counted in the city's calendar."""
    return at.astimezone(CITY_TIMEZONE).date()


def unopened(case_id: UUID, procedure: Procedure) -> CaseState:
    """A case before its first event (version 0): what `CaseOpened` is folded onto."""
    return CaseState(
        case_id=case_id,
        procedure=procedure,
        step="",
        version=0,
        assignee=None,
        submitted_at=None,
        legal_deadline=None,
        clock_paused_since=None,
        deadline_state="none",
        outcome=None,
        service=procedure.service,
    )


def evolve(state: CaseState, event: WorkflowEvent) -> CaseState:
    """What one event does to a case. Pure: the same events always fold to the same state."""
    if event.case_id != state.case_id or event.version != state.version + 1:
        raise BrokenHistory(
            f"event {event.type} v{event.version} of case {event.case_id} does not follow "
            f"case {state.case_id} at version {state.version}"
        )
    state = replace(state, version=event.version)
    if isinstance(event, CaseOpened):
        if (event.procedure, event.procedure_version) != (state.procedure.code, state.procedure.version):
            raise BrokenHistory(f"case {state.case_id} opened under another procedure than the one given")
        # Cases opened before `submitted_at` was recorded on the event: the opening is the closest fact.
        submitted_at = event.submitted_at or event.opened_at
        return replace(
            state,
            step=event.step,
            legal_deadline=event.legal_deadline,
            submitted_at=submitted_at,
            service=event.service,
        )
    if isinstance(event, CaseAssigned):
        return replace(state, assignee=event.assignee)
    if isinstance(event, StepChanged):
        # The pause started on the day of the step that stopped the clock; a later paused step keeps it.
        paused_since = (state.clock_paused_since or city_day(event.at)) if event.clock_paused else None
        moved = replace(
            state,
            step=event.to_step,
            legal_deadline=event.legal_deadline,
            clock_paused_since=paused_since,
            outcome=event.outcome,
        )
        if state.procedure.step(event.to_step).ask_if_fixed_after_days is not None:
            return replace(moved, done_at=event.at, done_version=event.version, fix_check_state="none")
        return moved
    if isinstance(event, FixCheckDue):
        return replace(state, fix_check_state="asked")
    if isinstance(event, DeadlineApproaching):
        return replace(state, deadline_state="warned")
    if isinstance(event, DeadlinePassed):
        return replace(state, deadline_state="passed")
    raise BrokenHistory(f"workflow does not know what {event.type} does to a case")


def fold(state: CaseState, events: Iterable[WorkflowEvent]) -> CaseState:
    for event in events:
        state = evolve(state, event)
    return state


def _recorded(state: CaseState, *events: WorkflowEvent) -> tuple[CaseState, list[WorkflowEvent]]:
    return fold(state, events), list(events)


def open_case(
    submitted: CaseSubmitted, procedure: Procedure, *, now: datetime
) -> tuple[CaseState, CaseOpened]:
    event = CaseOpened(
        case_id=submitted.case_id,
        version=1,
        procedure=procedure.code,
        procedure_version=procedure.version,
        service=submitted.service,
        step=procedure.first_step.code,
        legal_deadline=submitted.legal_deadline,
        opened_at=now,
        submitted_at=submitted.submitted_at,
    )
    return evolve(unopened(submitted.case_id, procedure), event), event


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
        raise Conflict(
            "workflow.version_conflict",
            extra={"current_version": state.version},
            expected=expected,
            current=state.version,
        )


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
    return _recorded(
        state,
        CaseAssigned(case_id=state.case_id, version=state.version + 1, assignee=assignee, by=by, at=now),
    )


def _deadline_after(state: CaseState, target_turn: Turn, today: date) -> date | None:
    """The legal deadline once the case is in a step whose turn is `target_turn`: the days the clock
    stood still while waiting for the citizen are added when it starts again."""
    rule = state.procedure.legal_deadline
    paused_since = state.clock_paused_since
    if state.legal_deadline is None or rule is None or not rule.clock_stops_when_waiting_for_citizen:
        return state.legal_deadline
    if paused_since is not None and target_turn != Turn.CITIZEN:
        return state.legal_deadline + timedelta(days=(today - paused_since).days)
    return state.legal_deadline


def _clock_stops(state: CaseState, target_turn: Turn) -> bool:
    rule = state.procedure.legal_deadline
    return (
        state.legal_deadline is not None
        and rule is not None
        and rule.clock_stops_when_waiting_for_citizen
        and target_turn == Turn.CITIZEN
    )


def _transition(state: CaseState, action: str, actor: Agent | None) -> Transition:
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
    return transition


def move(
    state: CaseState,
    *,
    action: str,
    actor: Agent | None,
    now: datetime,
    reason: str | None = None,
    duplicate_of: CaseState | None = None,
) -> tuple[CaseState, list[WorkflowEvent]]:
    """Take the transition `action` from the current step; `actor` None is the citizen answering.
    A move into a step named `duplicate` says which case it duplicates (`duplicate_of`, loaded)."""
    if actor is not None:
        check_visible(state, actor)
    check_open(state)
    transition = _transition(state, action, actor)
    target = state.procedure.step(transition.to)
    if target.outcome == "rejected" and not (reason and reason.strip()):
        raise WorkflowError("workflow.reason_required", action=action)
    _check_original(state, target.code, duplicate_of)
    return _recorded(
        state, _step_changed(state, action, target, actor=actor, now=now, duplicate_of=duplicate_of)
    )


def _step_changed(
    state: CaseState,
    action: str,
    target: Step,
    *,
    actor: Agent | None,
    now: datetime,
    duplicate_of: CaseState | None = None,
) -> StepChanged:
    """The event of a move into `target`, by an agent or (`actor` None) the citizen."""
    return StepChanged(
        case_id=state.case_id,
        version=state.version + 1,
        action=action,
        from_step=state.step,
        to_step=target.code,
        actor="agent" if actor is not None else "citizen",
        by=actor.id if actor is not None else None,
        at=now,
        clock_paused=_clock_stops(state, target.turn),
        legal_deadline=_deadline_after(state, target.turn, city_day(now)),
        outcome=target.outcome.value if target.outcome else None,
        duplicate_of=duplicate_of.case_id if duplicate_of is not None else None,
    )


DUPLICATE_STEP = "duplicate"


def _check_original(state: CaseState, target: str, original: CaseState | None) -> None:
    """A duplicate names its original: another open case of the same procedure (the reporter then
    follows it), so that a chain of duplicates always ends at a case being dealt with."""
    if target != DUPLICATE_STEP:
        if original is not None:
            raise WorkflowError("workflow.duplicate_of_not_expected", step=target)
        return
    if original is None:
        raise WorkflowError("workflow.duplicate_of_required")
    if original.case_id == state.case_id:
        raise WorkflowError("workflow.duplicate_of_itself")
    if original.procedure.code != state.procedure.code:
        raise WorkflowError("workflow.duplicate_of_other_procedure", procedure=original.procedure.code)
    if original.final:
        raise WorkflowError("workflow.duplicate_of_closed", outcome=original.outcome)


def reopen(state: CaseState, *, done_version: int, now: datetime) -> tuple[CaseState, list[WorkflowEvent]]:
    """The reporter said the "done" of `done_version` is not fixed: the procedure's citizen transition out
    of that step, if the case is still there (nothing otherwise: it moved on, or was reopened already)."""
    step = state.procedure.step(state.step) if state.step else None
    if step is None or step.ask_if_fixed_after_days is None or state.done_version != done_version:
        return state, []
    [transition] = [t for t in state.procedure.transitions if t.from_ == state.step]
    target = state.procedure.step(transition.to)
    return _recorded(state, _step_changed(state, transition.action, target, actor=None, now=now))


def fix_check_events(state: CaseState, *, now: datetime) -> tuple[CaseState, list[WorkflowEvent]]:
    """Once a report has been "done" for its procedure's days, its reporter is asked if it is fixed."""
    step = state.procedure.step(state.step) if state.step else None
    days = step.ask_if_fixed_after_days if step is not None else None
    if days is None or state.fix_check_state != "none" or state.done_at is None or state.done_version is None:
        return state, []
    if now < state.done_at + timedelta(days=days):
        return state, []
    return _recorded(
        state,
        FixCheckDue(
            case_id=state.case_id,
            version=state.version + 1,
            step=state.step,
            done_version=state.done_version,
            done_at=state.done_at,
            at=now,
        ),
    )


def citizen_transition(state: CaseState) -> str | None:
    """The action a citizen's reply takes from the current step, if the case is waiting for one."""
    found = _transitions(state, {Role.CITIZEN})
    return found[0].action if found and not state.final else None


def deadline_events(
    state: CaseState, *, now: datetime, warn_days: int
) -> tuple[CaseState, list[WorkflowEvent]]:
    """What the passing of time records: a warning a few days before, the deadline passing, a tacit decision."""
    if state.final or state.legal_deadline is None or state.clock_paused_since is not None:
        return state, []
    days_left = (state.legal_deadline - city_day(now)).days
    if days_left < 0 and state.deadline_state != "passed":
        return _deadline_passed(state, now=now)
    if 0 <= days_left <= warn_days and state.deadline_state == "none":
        return _recorded(
            state,
            DeadlineApproaching(
                case_id=state.case_id,
                version=state.version + 1,
                legal_deadline=state.legal_deadline,
                days_left=days_left,
                at=now,
            ),
        )
    return state, []


def _deadline_passed(state: CaseState, *, now: datetime) -> tuple[CaseState, list[WorkflowEvent]]:
    assert state.legal_deadline is not None
    passed = DeadlinePassed(
        case_id=state.case_id,
        version=state.version + 1,
        legal_deadline=state.legal_deadline,
        step=state.step,
        at=now,
    )
    rule = state.procedure.legal_deadline
    if rule is None or rule.tacit_step is None:
        return _recorded(state, passed)
    target = state.procedure.step(rule.tacit_step)
    decision = StepChanged(
        case_id=state.case_id,
        version=state.version + 2,
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
    return _recorded(state, passed, decision)
