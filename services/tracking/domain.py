"""tracking's rules: what a case looks like to the person holding its tracking code."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from services.tracking.schemas import (
    Clocks,
    FixCheck,
    Forecast,
    HistoryEntry,
    HistoryKind,
    ProcedureRef,
    Status,
    StepOverview,
    TrackingView,
)
from shared.i18n import translate
from shared.procedures import CITY_TIMEZONE, Catalogue, Procedure, Role, Step

# History entries that are not a move to a step read as what happened, not as the step's name.
_EVENT_LABELS = {
    HistoryKind.DEADLINE_PASSED: "history.deadline_passed",
    HistoryKind.CITIZEN_REPLIED: "history.citizen_replied",
    HistoryKind.FIX_CONFIRMED: "history.fix_confirmed",
    HistoryKind.NOT_FIXED: "history.not_fixed",
}


def _overview(
    procedure: Procedure, current: str, visited: set[str], lang: str, measured: dict[str, Any]
) -> list[StepOverview]:
    """Steps already passed, the current one, then the ordinary path ahead (final steps only if reached)."""
    out = []
    current_is_final = procedure.step(current).outcome is not None
    for step in procedure.steps:
        if step.code == current:
            state = "current"
        elif step.code in visited:
            state = "done"
        elif step.outcome is not None or step.turn == "citizen" or current_is_final:
            continue  # alternative endings and detours are shown only once they happen
        else:
            state = "upcoming"
        out.append(
            StepOverview(
                step=step.code,
                label=step.label.in_(lang),
                explanation=step.explanation.in_(lang),
                expected_days=(measured.get(step.code) or {}).get("usual_days") or step.expected_days,
                measured=(measured.get(step.code) or {}).get("usual_days") is not None,
                state=state,
            )
        )
    return out


def _history(procedure: Procedure, history: list[dict[str, Any]], lang: str) -> list[HistoryEntry]:
    out = []
    for h in history:
        kind = HistoryKind(h["kind"])
        key = _EVENT_LABELS.get(kind)
        label = translate(key, lang) if key else procedure.step(h["step"]).label.in_(lang)
        out.append(HistoryEntry(kind=kind, step=h["step"], label=label, at=h["occurred_at"]))
    return out


def _awaits_reply(procedure: Procedure, step: Step) -> bool:
    """Whether the citizen moves the case on by answering (a transition out of this step is theirs)."""
    return any(t.from_ == step.code and Role.CITIZEN in t.roles for t in procedure.transitions)


def _clocks(case: dict[str, Any], *, final: bool, today: date) -> Clocks:
    deadline: date | None = case["legal_deadline"]
    paused: bool = case["clock_paused"]
    submitted: datetime = case["submitted_at"]
    return Clocks(
        elapsed_days=(today - submitted.astimezone(CITY_TIMEZONE).date()).days,
        legal_deadline=deadline,
        clock_paused=paused,
        days_left=(deadline - today).days if deadline and not final and not paused else None,
    )


def forecast_of(
    step: Step, since: datetime, figures: dict[str, Any] | None, lang: str, today: date
) -> Forecast:
    """Likely decided between p50 and p90 of the time similar recent cases took from this step on."""
    if figures is None:
        return Forecast(available=False, explanation=translate("forecast.unavailable", lang))
    at_step = figures.get("steps", {}).get(step.code) or {}
    p50, p90 = at_step.get("p50_days"), at_step.get("p90_days")
    if p50 is None or p90 is None:
        return Forecast(
            available=False,
            explanation=translate(
                "forecast.not_enough", lang, n=at_step.get("n", 0), min=figures.get("min_cases")
            ),
        )
    entered = since.astimezone(CITY_TIMEZONE).date()
    likely_from = max(today, entered + timedelta(days=round(p50)))
    return Forecast(
        available=True,
        likely_from=likely_from,
        likely_to=max(likely_from, entered + timedelta(days=round(p90))),
        based_on=at_step["n"],
        explanation=translate(
            "forecast.method",
            lang,
            n=at_step["n"],
            months=figures.get("window_months"),
            factor=figures.get("backlog_factor"),
        ),
    )


def build_view(
    *,
    code: str,
    case: dict[str, Any],
    history: list[dict[str, Any]],
    catalogue: Catalogue,
    lang: str,
    today: date,
    figures: dict[str, Any] | None = None,
) -> TrackingView:
    """What the tracking code shows (`code` as it is shown: `tracking_code.display`); `figures` are stats'
    published figures for the procedure, if any."""
    procedure = catalogue.get(case["procedure"], case["procedure_version"])
    if procedure is None:
        raise LookupError(
            f"procedure {case['procedure']} v{case['procedure_version']} is not in the catalogue"
        )
    step = procedure.step(case["step"])
    # workflow's outcome when it decided; the step's own when the case only reached a final step.
    outcome: str | None = case["outcome"] or step.outcome
    final = outcome is not None
    return TrackingView(
        tracking_code=code,
        language=lang,
        procedure=ProcedureRef(
            code=procedure.code, version=procedure.version, title=procedure.title.in_(lang)
        ),
        submitted_at=case["submitted_at"],
        status=Status(
            step=step.code,
            label=step.label.in_(lang),
            explanation=step.explanation.in_(lang),
            since=case["step_since"],
            turn=step.turn,
            turn_label=translate(f"turn.{step.turn}", lang),
            final=final,
            outcome=outcome,
            awaiting_reply=not final and step.turn == "citizen" and _awaits_reply(procedure, step),
        ),
        history=_history(procedure, history, lang),
        steps=_overview(
            procedure, step.code, {h["step"] for h in history}, lang, (figures or {}).get("steps", {})
        ),
        clocks=_clocks(case, final=final, today=today),
        forecast=None if final else forecast_of(step, case["step_since"], figures, lang, today),
        fix_check=_fix_check(step, case),
        version=case["version"],
    )


def _fix_check(step: Step, case: dict[str, Any]) -> FixCheck | None:
    if step.ask_if_fixed_after_days is None or case.get("done_version") is None:
        return None
    answer = {True: "fixed", False: "not-fixed", None: None}[case.get("fix_answer")]
    return FixCheck(
        asked=case.get("fix_asked_at") is not None,
        ask_from=case["step_since"] + timedelta(days=step.ask_if_fixed_after_days),
        answer=answer,
    )


# What anyone may see of a case's history: what the city did. Its reporter's own acts (a reply, "fixed"
# or "not fixed") are theirs, and their labels speak to them ("You said...").
_PUBLIC_HISTORY = {HistoryKind.SUBMITTED, HistoryKind.STEP_CHANGED, HistoryKind.DEADLINE_PASSED}


def progress(
    procedure: Procedure, *, step: str, history: list[dict[str, Any]], lang: str
) -> tuple[list[StepOverview], list[HistoryEntry]]:
    """A case's steps (passed, current, the ordinary path ahead) and its public history, for the pages
    that show a case to others than its reporter: a street report's public page, a duplicate's original."""
    public = [h for h in history if HistoryKind(h["kind"]) in _PUBLIC_HISTORY]
    steps = _overview(procedure, step, {h["step"] for h in public}, lang, {})
    return steps, _history(procedure, public, lang)
